use optdsl::quant::quantizer;
fn main() {
    let q = quantizer(true);
    let n = 1_000_000usize;
    let xs: Vec<f32> = (0..n)
        .map(|i| ((i * 7919 % 2001) as f32 / 1000.0 - 1.0) * 1e-2)
        .collect();
    let mut codes = vec![0u8; n];
    let mut s = 0.0;
    for (x, c) in xs.chunks(256).zip(codes.chunks_mut(256)) {
        s += q.quantize(x, c);
    }
    println!("{s} {}", codes[5]);
}
