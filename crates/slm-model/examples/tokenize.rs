//! Print the token ids of a text file as the model's tokenizer encodes it (BOS added as the
//! model asks): `cargo run --release -p slm-model --example tokenize -- MODEL.gguf TEXT.txt`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (model, text) = (args.get(1).ok_or("model")?, args.get(2).ok_or("text")?);
    let file = slm_gguf::GgufFile::open(std::path::Path::new(model))?;
    let tok = slm_tokenizer::Tokenizer::from_gguf(&file)?;
    let ids = tok.encode(&std::fs::read_to_string(text)?, true, false)?;
    let s: Vec<String> = ids.iter().map(u32::to_string).collect();
    println!("{}", s.join(" "));
    Ok(())
}
