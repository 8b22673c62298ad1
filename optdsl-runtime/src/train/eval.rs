//! Evaluating a network on a data set, and the time of the bare matrix
//! products an epoch needs (the yardstick of `compare`'s epoch times).

use crate::data::{Batches, Dataset};
use crate::error::Result;
use crate::net::{NetFloat, Network, Workspace};
use crate::stats::median;
use std::time::Instant;

/// The mean loss and the accuracy of `net` on `data`, in batches of `ws`'s capacity.
pub fn evaluate<F: NetFloat>(
    net: &Network<F>,
    ws: &mut Workspace<F>,
    data: &Dataset,
) -> Result<(f64, f64)> {
    let order: Vec<usize> = (0..data.len()).collect();
    let (loss, correct) = evaluate_rows(net, ws, data, &order)?;
    let n = data.len() as f64;
    Ok((loss / n, correct as f64 / n))
}

/// The summed loss and the number right of `net` on the rows `rows` of
/// `data`, in batches of `ws`'s capacity.
pub fn evaluate_rows<F: NetFloat>(
    net: &Network<F>,
    ws: &mut Workspace<F>,
    data: &Dataset,
    rows: &[usize],
) -> Result<(f64, usize)> {
    let (mut loss, mut correct) = (0.0, 0);
    for chunk in rows.chunks(ws.capacity()) {
        let staged = ws.stage_rows(data, chunk);
        let (l, c) = net.staged_loss(ws, staged)?;
        loss += l;
        correct += c;
    }
    Ok((loss, correct))
}

/// Seconds the bare matrix products of one training epoch take: the forward
/// and backward `general_mat_mul` calls of every mini-batch of `rows` rows in
/// batches of `batch` (same shapes, same count, same buffers), without
/// activations, loss, bias terms, optimizer or shuffling. The median of
/// `repeats` epochs, after one warm-up epoch.
pub fn matmul_epoch_seconds<F: NetFloat>(
    net: &Network<F>,
    data: &Dataset,
    batch: usize,
    repeats: usize,
) -> Result<f64> {
    let mut ws = Workspace::new(net, batch);
    let rows = data.len();
    let batches = Batches::new(rows, batch);
    // Real rows and one real pass, so the buffers hold realistic values.
    let first: Vec<usize> = batches.iter().next().expect("a batch").to_vec();
    let staged = ws.stage_rows(data, &first);
    net.staged_loss_and_grad(&mut ws, staged)?;
    let mut times = Vec::with_capacity(repeats);
    for rep in 0..=repeats {
        let start = Instant::now();
        for chunk in batches.iter() {
            net.staged_matmuls_only(&mut ws, chunk.len())?;
        }
        if rep > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(median(times))
}
