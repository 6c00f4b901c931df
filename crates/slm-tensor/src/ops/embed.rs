//! Embedding lookup: dequantize only the rows of a (possibly quantized) table that a batch
//! needs, never the whole table.

use slm_gguf::GgmlType;
use slm_quant::formats::dequantize_row;
use slm_quant::QuantError;

/// Copy rows `ids` of a table (n_rows, n_cols) of type `ty` stored in `data` into `out`
/// (ids.len(), n_cols). Fails on a row id past the table or a type that cannot be dequantized.
pub fn get_rows(
    ty: GgmlType,
    data: &[u8],
    n_cols: usize,
    ids: &[u32],
    out: &mut [f32],
) -> Result<(), QuantError> {
    let row_bytes = ty
        .row_bytes(n_cols as u64)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or(QuantError::NotBlockMultiple {
            ty,
            n: n_cols,
            block: usize::try_from(ty.block_size()).unwrap_or(usize::MAX),
        })?;
    for (&id, dst) in ids.iter().zip(out.chunks_exact_mut(n_cols)) {
        let start = (id as usize).saturating_mul(row_bytes);
        let src =
            data.get(start..start.saturating_add(row_bytes))
                .ok_or(QuantError::ByteLength {
                    ty,
                    n: n_cols,
                    expected: start.saturating_add(row_bytes),
                    actual: data.len(),
                })?;
        dequantize_row(ty, src, dst)?;
    }
    Ok(())
}
