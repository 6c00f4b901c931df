//! llama.cpp's file types (`enum llama_ftype` in `llama.h`): the id stored in
//! `general.file_type`, the names `llama-quantize` accepts, and the default tensor type of each
//! mix (`llama_ftype_get_default_type` in `llama-quant.cpp`).

use slm_gguf::GgmlType;

/// A quantization mix, with llama.cpp's `llama_ftype` id as discriminant.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    /// `LLAMA_FTYPE_ALL_F32`.
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q8_0 = 7,
    Q5_0 = 8,
    Q5_1 = 9,
    Q2_K = 10,
    Q3_K_S = 11,
    Q3_K_M = 12,
    Q3_K_L = 13,
    Q4_K_S = 14,
    Q4_K_M = 15,
    Q5_K_S = 16,
    Q5_K_M = 17,
    Q6_K = 18,
    IQ2_XXS = 19,
    IQ2_XS = 20,
    Q2_K_S = 21,
    IQ3_XS = 22,
    IQ3_XXS = 23,
    IQ1_S = 24,
    IQ4_NL = 25,
    IQ3_S = 26,
    IQ3_M = 27,
    IQ2_S = 28,
    IQ2_M = 29,
    IQ4_XS = 30,
    IQ1_M = 31,
    BF16 = 32,
    TQ1_0 = 36,
    TQ2_0 = 37,
    MXFP4_MOE = 38,
}

/// (file type, name as `llama-quantize` spells it)
const NAMES: &[(FileType, &str)] = &[
    (FileType::F32, "F32"),
    (FileType::F16, "F16"),
    (FileType::BF16, "BF16"),
    (FileType::Q4_0, "Q4_0"),
    (FileType::Q4_1, "Q4_1"),
    (FileType::Q5_0, "Q5_0"),
    (FileType::Q5_1, "Q5_1"),
    (FileType::Q8_0, "Q8_0"),
    (FileType::Q2_K, "Q2_K"),
    (FileType::Q2_K_S, "Q2_K_S"),
    (FileType::Q3_K_S, "Q3_K_S"),
    (FileType::Q3_K_M, "Q3_K_M"),
    (FileType::Q3_K_L, "Q3_K_L"),
    (FileType::Q4_K_S, "Q4_K_S"),
    (FileType::Q4_K_M, "Q4_K_M"),
    (FileType::Q5_K_S, "Q5_K_S"),
    (FileType::Q5_K_M, "Q5_K_M"),
    (FileType::Q6_K, "Q6_K"),
    (FileType::IQ2_XXS, "IQ2_XXS"),
    (FileType::IQ2_XS, "IQ2_XS"),
    (FileType::IQ2_S, "IQ2_S"),
    (FileType::IQ2_M, "IQ2_M"),
    (FileType::IQ1_S, "IQ1_S"),
    (FileType::IQ1_M, "IQ1_M"),
    (FileType::IQ3_XXS, "IQ3_XXS"),
    (FileType::IQ3_XS, "IQ3_XS"),
    (FileType::IQ3_S, "IQ3_S"),
    (FileType::IQ3_M, "IQ3_M"),
    (FileType::IQ4_NL, "IQ4_NL"),
    (FileType::IQ4_XS, "IQ4_XS"),
    (FileType::TQ1_0, "TQ1_0"),
    (FileType::TQ2_0, "TQ2_0"),
    (FileType::MXFP4_MOE, "MXFP4_MOE"),
];

/// `llama-quantize`'s aliases: a K-quant without a size letter is its `_M` mix.
const ALIASES: &[(&str, FileType)] = &[
    ("Q3_K", FileType::Q3_K_M),
    ("Q4_K", FileType::Q4_K_M),
    ("Q5_K", FileType::Q5_K_M),
];

impl FileType {
    /// Every file type, in the order `llama-quantize --help` lists them (roughly by size).
    pub fn all() -> impl Iterator<Item = FileType> {
        NAMES.iter().map(|(t, _)| *t)
    }

    /// The `llama_ftype` id (the value of `general.file_type`).
    pub fn id(self) -> u32 {
        self as u32
    }

    /// The file type for a `llama_ftype` id.
    pub fn from_id(id: u32) -> Option<FileType> {
        Self::all().find(|t| t.id() == id)
    }

    /// The name `llama-quantize` uses (`Q4_K_M`).
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(t, _)| *t == self)
            .map_or("?", |(_, n)| n)
    }

    /// Parses a name (case-insensitive, `Q4_K` = `Q4_K_M` as in `llama-quantize`) or a numeric id.
    pub fn parse(s: &str) -> Option<FileType> {
        if let Some(&(t, _)) = NAMES.iter().find(|(_, n)| n.eq_ignore_ascii_case(s)) {
            return Some(t);
        }
        if let Some(&(_, t)) = ALIASES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
            return Some(t);
        }
        s.parse::<u32>().ok().and_then(FileType::from_id)
    }

    /// The tensor type of the mix before the per-tensor rules (`llama_ftype_get_default_type`).
    pub fn default_type(self) -> GgmlType {
        use FileType as F;
        use GgmlType as T;
        match self {
            F::F32 => T::F32,
            F::F16 => T::F16,
            F::BF16 => T::BF16,
            F::Q4_0 => T::Q4_0,
            F::Q4_1 => T::Q4_1,
            F::Q5_0 => T::Q5_0,
            F::Q5_1 => T::Q5_1,
            F::Q8_0 => T::Q8_0,
            F::MXFP4_MOE => T::MXFP4,
            F::Q2_K_S | F::Q2_K => T::Q2_K,
            F::IQ3_XS => T::IQ3_S,
            F::Q3_K_S | F::Q3_K_M | F::Q3_K_L => T::Q3_K,
            F::Q4_K_S | F::Q4_K_M => T::Q4_K,
            F::Q5_K_S | F::Q5_K_M => T::Q5_K,
            F::Q6_K => T::Q6_K,
            F::TQ1_0 => T::TQ1_0,
            F::TQ2_0 => T::TQ2_0,
            F::IQ2_XXS => T::IQ2_XXS,
            F::IQ2_XS | F::IQ2_S => T::IQ2_XS,
            F::IQ2_M => T::IQ2_S,
            F::IQ3_XXS => T::IQ3_XXS,
            F::IQ1_S => T::IQ1_S,
            F::IQ1_M => T::IQ1_M,
            F::IQ4_NL => T::IQ4_NL,
            F::IQ4_XS => T::IQ4_XS,
            F::IQ3_S | F::IQ3_M => T::IQ3_S,
        }
    }
}

impl std::fmt::Display for FileType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ids_and_aliases() {
        for t in FileType::all() {
            assert_eq!(FileType::parse(t.name()), Some(t));
            assert_eq!(FileType::from_id(t.id()), Some(t));
        }
        assert_eq!(FileType::parse("q4_k"), Some(FileType::Q4_K_M));
        assert_eq!(FileType::parse("15"), Some(FileType::Q4_K_M));
        assert_eq!(FileType::parse("Q4_2"), None);
        assert_eq!(FileType::Q4_K_M.id(), 15);
        assert_eq!(FileType::TQ2_0.id(), 37);
        assert_eq!(FileType::IQ2_S.default_type(), GgmlType::IQ2_XS);
    }
}
