//! Data-parallel training across processes: each process takes its share of
//! every global mini-batch, the gradients are summed across processes, and
//! every process applies the same step (PyTorch's DDP), or each steps only
//! its slice of the parameter buffer with only that slice's optimizer state
//! and the slices are gathered (ZeRO stage 1). The collective operations come
//! from a [`Collective`]: MPI's in `optdsl::dist` (cargo feature `mpi`), or
//! any other transport.
//!
//! Why the result equals a single process's: every process shuffles with the
//! same seed and walks the same global batches; its share's gradient is the
//! gradient of its rows' summed loss divided by the global batch size, so
//! the sum over processes is the batch's mean-loss gradient, summed in
//! another order (differences of the order of 1e-16 relative in f64). The
//! step count, the schedule and every hyperparameter are the same everywhere.
//!
//! Shards are contiguous slices of the flat parameter buffer. For rules whose
//! update of an element depends only on that element (no `sum`, `mean`,
//! `norm` or `max_abs` of a tensor), the slices are equal (up to one element)
//! and may cut a tensor in two: each piece is stepped exactly as those
//! elements of the whole tensor. For rules with a reduction (LAMB's and
//! LARS's trust ratios), a piece's norm would not be the tensor's, so the
//! slices are cut at tensor boundaries only, the cut nearest each equal
//! share: per-tensor reductions keep their meaning and memory falls less
//! evenly.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::net::NetFloat;
use crate::optim::{Optimizer, OptimizerState};
use crate::train::{DataParallel, Trainer, TrainerState};
use optdsl_lang::{fnv1a_extend as fnv1a64, FNV_OFFSET};
use std::ops::Range;
use std::path::Path;
use std::time::Instant;

/// The collective operations data-parallel training needs, among `size`
/// processes numbered from 0 (MPI's ranks). Every process calls the same
/// operations in the same order with buffers of the same lengths.
pub trait Collective<F> {
    /// This process's number, from 0.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn size(&self) -> usize;
    /// `recv` = the element-wise sum of every process's `send` (equal lengths).
    fn all_reduce(&mut self, send: &[F], recv: &mut [F]) -> Result<()>;
    /// [`Collective::all_reduce`] in f64 (metrics).
    fn all_reduce_f64(&mut self, send: &[f64], recv: &mut [f64]) -> Result<()>;
    /// `send` is `size` blocks of `recv.len()` elements; process `k`'s `recv`
    /// = the element-wise sum of every process's block `k`.
    fn reduce_scatter(&mut self, send: &[F], recv: &mut [F]) -> Result<()>;
    /// `recv` = every process's `send` (equal lengths), in rank order.
    fn all_gather(&mut self, send: &[F], recv: &mut [F]) -> Result<()>;
    /// Process 0 receives every process's bytes, in rank order; the others `None`.
    fn gather_bytes(&mut self, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>>;
    /// Every process's `bytes` become process 0's.
    fn broadcast_bytes(&mut self, bytes: &mut Vec<u8>) -> Result<()>;
}

/// What the training steps of one process communicated (each process sends
/// and receives alike).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct CommStats {
    /// Steps taken.
    pub steps: u64,
    /// Collective operations the steps called.
    pub collectives: u64,
    /// Bytes the steps handed to collectives (each operation's larger buffer).
    pub payload_bytes: u64,
    /// Bytes this process sends for the steps when the collectives run as
    /// rings (the bandwidth-optimal algorithms): `2(N-1)/N` of an
    /// all-reduce's buffer, `(N-1)/N` of a reduce-scatter's input and of an
    /// all-gather's output.
    pub ring_bytes: u64,
    /// Seconds the steps spent in collectives (moving data and waiting for
    /// the other processes).
    pub seconds: f64,
}

impl CommStats {
    /// Collectives, payload bytes and ring bytes per step.
    pub fn per_step(&self) -> (f64, f64, f64) {
        let n = self.steps.max(1) as f64;
        (
            self.collectives as f64 / n,
            self.payload_bytes as f64 / n,
            self.ring_bytes as f64 / n,
        )
    }
}

/// This process's part in a data-parallel run over a [`Collective`]: plain
/// replicas (every process keeps the whole optimizer state; gradients
/// all-reduced), or sharded optimizer state (ZeRO stage 1: gradients
/// reduce-scattered, each process steps its slice, parameters all-gathered).
pub struct Replicas<'c, F> {
    comm: &'c mut dyn Collective<F>,
    rank: usize,
    size: usize,
    params: usize,
    shards: Option<Vec<Range<usize>>>,
    block: usize,
    send: Vec<F>,
    recv: Vec<F>,
    gathered: Vec<F>,
    stats: CommStats,
}

impl<'c, F: NetFloat> Replicas<'c, F> {
    /// Joins a run: checks that every process starts from the same state and
    /// data (a typed error naming the processes that differ), then, with
    /// `shard`, cuts `trainer`'s optimizer to this process's slice.
    pub fn new(
        comm: &'c mut dyn Collective<F>,
        trainer: &mut Trainer<F>,
        shard: bool,
        data: &[&Dataset],
    ) -> Result<Self> {
        check_same_start(comm, trainer, data)?;
        let (rank, size) = (comm.rank(), comm.size());
        let params = trainer.network().params().len();
        let mut rep = Replicas {
            comm,
            rank,
            size,
            params,
            shards: None,
            block: params,
            send: vec![F::ZERO; params + 1],
            recv: vec![F::ZERO; params + 1],
            gathered: vec![],
            stats: CommStats::default(),
        };
        if shard {
            let lens: Vec<usize> = trainer.optimizer_lens().concat();
            let rule = trainer.optimizer().rule(0)?.info();
            let mut shards = shard_ranges(&lens, size, rule.has_reduction());
            let compressed = trainer
                .optimizer()
                .groups()
                .iter()
                .any(|g| g.states().iter().any(|s| !s.packed.is_empty()));
            if compressed {
                shards = align_shards(&shards, &lens, optdsl_lang::QBLOCK);
            }
            let block = shards.iter().map(|r| r.len()).max().unwrap_or(0);
            trainer.shard_optimizer(shards[rank].clone())?;
            rep.block = block;
            rep.send = vec![F::ZERO; size * (block + 1)];
            rep.recv = vec![F::ZERO; block + 1];
            rep.gathered = vec![F::ZERO; size * block];
            rep.shards = Some(shards);
        }
        Ok(rep)
    }

    /// This process's number.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of processes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Each process's slice of the parameter buffer, when the optimizer
    /// state is sharded.
    pub fn shards(&self) -> Option<&[Range<usize>]> {
        self.shards.as_deref()
    }

    /// What the steps so far communicated.
    pub fn stats(&self) -> CommStats {
        self.stats
    }

    /// Saves the run to one checkpoint file at `path`, written by process 0
    /// (atomically); sharded optimizer state is gathered first and joined
    /// into the layout a single process saves, so any number of processes
    /// can resume it. Every process must call this.
    pub fn save(&mut self, trainer: &Trainer<F>, path: &Path) -> Result<()> {
        if self.shards.is_none() {
            return if self.rank == 0 {
                trainer.save(path)
            } else {
                Ok(())
            };
        }
        let mine =
            serde_json::to_vec(&trainer.optimizer().state()).map_err(|e| Error::Invalid {
                what: "optimizer state".into(),
                reason: format!("cannot encode: {e}"),
            })?;
        let Some(parts) = self.comm.gather_bytes(&mine)? else {
            return Ok(());
        };
        let parts = parts
            .iter()
            .enumerate()
            .map(|(k, bytes)| {
                serde_json::from_slice::<OptimizerState<F>>(bytes).map_err(|e| {
                    Error::StateMismatch(format!("process {k}'s optimizer shard: {e}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut state: TrainerState<F> = trainer.state();
        state.optimizer = OptimizerState::join(parts, &trainer.optimizer_lens())?;
        state.save(path)
    }

    fn count(&mut self, payload: usize, ring_parts: f64, start: Instant) {
        self.stats.seconds += start.elapsed().as_secs_f64();
        let bytes = payload * std::mem::size_of::<F>();
        self.stats.collectives += 1;
        self.stats.payload_bytes += bytes as u64;
        self.stats.ring_bytes += (bytes as f64 * ring_parts).round() as u64;
    }
}

impl<F: NetFloat> DataParallel<F> for Replicas<'_, F> {
    fn alone(&self) -> bool {
        false
    }
    fn share<'a>(&self, rows: &'a [usize]) -> &'a [usize] {
        let n = rows.len();
        &rows[self.rank * n / self.size..(self.rank + 1) * n / self.size]
    }

    fn reduce(&mut self, grads: &[F], loss: f64) -> Result<f64> {
        if grads.len() != self.params {
            return Err(Error::LengthMismatch {
                what: "the gradient buffer".into(),
                expected: self.params,
                got: grads.len(),
            });
        }
        let n = self.size as f64;
        let loss = F::from_f64(loss);
        match &self.shards {
            None => {
                self.send[..self.params].copy_from_slice(grads);
                self.send[self.params] = loss;
                let start = Instant::now();
                self.comm.all_reduce(&self.send, &mut self.recv)?;
                self.count(self.send.len(), 2.0 * (n - 1.0) / n, start);
                Ok(self.recv[self.params].to_f64())
            }
            Some(shards) => {
                // Block k: process k's slice of the gradient, zeros to the
                // common block length, then this process's loss (so every
                // process receives the summed loss with its slice).
                let m = self.block;
                for (k, r) in shards.iter().enumerate() {
                    let block = &mut self.send[k * (m + 1)..(k + 1) * (m + 1)];
                    block[..r.len()].copy_from_slice(&grads[r.clone()]);
                    block[r.len()..m].fill(F::ZERO);
                    block[m] = loss;
                }
                let start = Instant::now();
                self.comm.reduce_scatter(&self.send, &mut self.recv)?;
                self.count(self.send.len(), (n - 1.0) / n, start);
                Ok(self.recv[m].to_f64())
            }
        }
    }

    fn apply(&mut self, opt: &mut Optimizer<F>, params: &mut [F], _grads: &[F]) -> Result<()> {
        let Some(shards) = &self.shards else {
            opt.step_flat(params, &self.recv[..self.params])?;
            self.stats.steps += 1;
            return Ok(());
        };
        let (m, mine) = (self.block, shards[self.rank].clone());
        opt.step_flat(&mut params[mine.clone()], &self.recv[..mine.len()])?;
        self.send[..mine.len()].copy_from_slice(&params[mine.clone()]);
        self.send[mine.len()..m].fill(F::ZERO);
        let start = Instant::now();
        self.comm.all_gather(&self.send[..m], &mut self.gathered)?;
        for (k, r) in shards.iter().enumerate() {
            params[r.clone()].copy_from_slice(&self.gathered[k * m..k * m + r.len()]);
        }
        let n = self.size as f64;
        self.count(self.gathered.len(), (n - 1.0) / n, start);
        self.stats.steps += 1;
        Ok(())
    }

    fn sum(&mut self, values: &mut [f64]) -> Result<()> {
        let send = values.to_vec();
        self.comm.all_reduce_f64(&send, values)
    }
}

/// The contiguous slices of a buffer of tensors of lengths `lens` (back to
/// back) that `n` processes own: equal shares (the last ones perhaps one
/// element shorter, or empty when there are more processes than elements),
/// or, with `whole_tensors`, cut only at tensor boundaries, each cut the
/// boundary nearest an equal share's.
pub fn shard_ranges(lens: &[usize], n: usize, whole_tensors: bool) -> Vec<Range<usize>> {
    let total: usize = lens.iter().sum();
    let n = n.max(1);
    let mut cuts = vec![0usize];
    if whole_tensors {
        let bounds: Vec<usize> = std::iter::once(0)
            .chain(lens.iter().scan(0, |end, &l| {
                *end += l;
                Some(*end)
            }))
            .collect();
        for k in 1..n {
            let target = (k * total) as f64 / n as f64;
            let prev = *cuts.last().expect("a cut");
            let best = bounds
                .iter()
                .copied()
                .filter(|&b| b >= prev)
                .min_by(|a, b| {
                    let da = (*a as f64 - target).abs();
                    let db = (*b as f64 - target).abs();
                    da.total_cmp(&db)
                })
                .unwrap_or(prev);
            cuts.push(best);
        }
    } else {
        let c = total.div_ceil(n);
        cuts.extend((1..n).map(|k| (k * c).min(total)));
    }
    cuts.push(total);
    cuts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// `shards` with each cut moved down to the nearest element whose offset in
/// its tensor is a multiple of `align` (compressed 8-bit state splits only
/// at its blocks of 256).
pub fn align_shards(shards: &[Range<usize>], lens: &[usize], align: usize) -> Vec<Range<usize>> {
    let align = align.max(1);
    let snap = |p: usize| -> usize {
        let mut start = 0;
        for &l in lens {
            if p < start + l {
                return start + (p - start) / align * align;
            }
            start += l;
        }
        p
    };
    let mut cuts: Vec<usize> = shards.iter().map(|r| snap(r.start)).collect();
    cuts.push(shards.last().map_or(0, |r| r.end));
    for k in 1..cuts.len() {
        cuts[k] = cuts[k].max(cuts[k - 1]);
    }
    cuts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Resumes every process's `trainer` from the checkpoint at `path` as read
/// by process 0 and sent to the others (so only process 0 needs the file),
/// to a run of `epochs` epochs. Every process must call this.
pub fn resume<F: NetFloat>(
    comm: &mut dyn Collective<F>,
    trainer: &mut Trainer<F>,
    path: &Path,
    epochs: usize,
) -> Result<()> {
    let mut bytes = if comm.rank() == 0 {
        crate::checkpoint::read(path)?
    } else {
        vec![]
    };
    comm.broadcast_bytes(&mut bytes)?;
    let saved = TrainerState::decode(path, &bytes)?;
    trainer.resume_from(saved, path, epochs)
}

/// A hash of the trainer's whole state and of the data.
fn fingerprint<F: NetFloat>(trainer: &Trainer<F>, data: &[&Dataset]) -> u64 {
    let mut state = trainer.state();
    for r in &mut state.records {
        r.seconds = 0.0;
        r.eval_seconds = 0.0;
    }
    let json = serde_json::to_vec(&state).unwrap_or_default();
    let mut h = fnv1a64(FNV_OFFSET, &json);
    for d in data {
        for x in d.inputs() {
            h = fnv1a64(h, &x.to_le_bytes());
        }
        for y in d.labels() {
            h = fnv1a64(h, &y.to_le_bytes());
        }
    }
    h
}

/// Checks that every process starts from the same trainer state and data.
fn check_same_start<F: NetFloat>(
    comm: &mut dyn Collective<F>,
    trainer: &Trainer<F>,
    data: &[&Dataset],
) -> Result<()> {
    let mine = fingerprint(trainer, data).to_le_bytes();
    let mut differ: Vec<u8> = match comm.gather_bytes(&mine)? {
        Some(all) => all
            .iter()
            .enumerate()
            .filter(|(_, h)| h.as_slice() != mine)
            .flat_map(|(k, _)| (k as u32).to_le_bytes())
            .collect(),
        None => vec![],
    };
    comm.broadcast_bytes(&mut differ)?;
    if differ.is_empty() {
        return Ok(());
    }
    let ranks: Vec<String> = differ
        .chunks_exact(4)
        .map(|k| u32::from_le_bytes([k[0], k[1], k[2], k[3]]).to_string())
        .collect();
    Err(Error::Invalid {
        what: "data-parallel start".into(),
        reason: format!(
            "process(es) {} start from another network, optimizer, settings or data than process 0; \
             launch every process with the same arguments and data files",
            ranks.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin_rule;
    use crate::net::{Activation, Network, NetworkSpec};
    use crate::rule::HyperValue;
    use crate::train::{Silent, TrainConfig};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::sync::{Arc, Barrier, Mutex};

    /// Processes as threads: every collective is an exchange of every
    /// thread's buffer through shared slots, summed in rank order.
    struct Threads {
        rank: usize,
        size: usize,
        barrier: Arc<Barrier>,
        slots: Arc<Mutex<Vec<Vec<f64>>>>,
    }

    impl Threads {
        fn world(size: usize) -> Vec<Threads> {
            let barrier = Arc::new(Barrier::new(size));
            let slots = Arc::new(Mutex::new(vec![vec![]; size]));
            (0..size)
                .map(|rank| Threads {
                    rank,
                    size,
                    barrier: barrier.clone(),
                    slots: slots.clone(),
                })
                .collect()
        }

        fn exchange(&self, mine: Vec<f64>) -> Vec<Vec<f64>> {
            self.slots.lock().unwrap()[self.rank] = mine;
            self.barrier.wait();
            let all = self.slots.lock().unwrap().clone();
            self.barrier.wait();
            all
        }

        fn summed(&self, mine: Vec<f64>) -> Vec<f64> {
            let all = self.exchange(mine);
            (0..all[0].len())
                .map(|i| all.iter().map(|v| v[i]).fold(0.0, |a, x| a + x))
                .collect()
        }
    }

    fn wide<F: NetFloat>(x: &[F]) -> Vec<f64> {
        x.iter().map(|v| v.to_f64()).collect()
    }

    impl<F: NetFloat> Collective<F> for Threads {
        fn rank(&self) -> usize {
            self.rank
        }
        fn size(&self) -> usize {
            self.size
        }
        fn all_reduce(&mut self, send: &[F], recv: &mut [F]) -> Result<()> {
            for (r, s) in recv.iter_mut().zip(self.summed(wide(send))) {
                *r = F::from_f64(s);
            }
            Ok(())
        }
        fn all_reduce_f64(&mut self, send: &[f64], recv: &mut [f64]) -> Result<()> {
            recv.copy_from_slice(&self.summed(send.to_vec()));
            Ok(())
        }
        fn reduce_scatter(&mut self, send: &[F], recv: &mut [F]) -> Result<()> {
            let sum = self.summed(wide(send));
            let m = recv.len();
            for (r, s) in recv.iter_mut().zip(&sum[self.rank * m..]) {
                *r = F::from_f64(*s);
            }
            Ok(())
        }
        fn all_gather(&mut self, send: &[F], recv: &mut [F]) -> Result<()> {
            let all = self.exchange(wide(send)).concat();
            for (r, s) in recv.iter_mut().zip(all) {
                *r = F::from_f64(s);
            }
            Ok(())
        }
        fn gather_bytes(&mut self, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
            let all = self.exchange(bytes.iter().map(|&b| b as f64).collect());
            Ok((self.rank == 0).then(|| {
                all.iter()
                    .map(|v| v.iter().map(|&b| b as u8).collect())
                    .collect()
            }))
        }
        fn broadcast_bytes(&mut self, bytes: &mut Vec<u8>) -> Result<()> {
            let all = self.exchange(bytes.iter().map(|&b| b as f64).collect());
            *bytes = all[0].iter().map(|&b| b as u8).collect();
            Ok(())
        }
    }

    /// Noisy blobs: 3 classes of 6 inputs. 66 rows in batches of 16 leave a
    /// last batch of 2, so that some of 3 or 4 processes have no row of it.
    fn blobs(seed: u64, rows: usize) -> Dataset {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let labels: Vec<u32> = (0..rows).map(|i| (i % 3) as u32).collect();
        let inputs = labels
            .iter()
            .flat_map(|&y| (0..6).map(move |j| (j % 3 == y as usize) as u8 as f64))
            .map(|x| x + 0.5 * (rng.random::<f64>() - 0.5))
            .collect();
        Dataset::new("blobs", 6, 3, inputs, labels).unwrap()
    }

    fn trainer(opt: &str, lr: f64, epochs: usize) -> Trainer<f64> {
        let spec = NetworkSpec::classifier(6, &[5], Activation::Tanh, 3);
        let net = Network::new(spec, 3).unwrap();
        let mut rule = builtin_rule(opt).unwrap();
        rule.set_hyper("lr", HyperValue::Num(lr)).unwrap();
        let config = TrainConfig {
            epochs,
            batch: 16,
            seed: 9,
            ..TrainConfig::default()
        };
        Trainer::new(net, rule, config).unwrap()
    }

    fn max_rel(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs() / x.abs().max(y.abs()).max(f64::MIN_POSITIVE))
            .fold(0.0, f64::max)
    }

    fn state_buffers(s: &TrainerState<f64>) -> Vec<f64> {
        s.optimizer
            .groups
            .iter()
            .flat_map(|g| &g.states)
            .flat_map(|t| t.buffers.iter().flatten().copied())
            .collect()
    }

    /// Trains 3 epochs on `size` threads, rank 0 saving to `path`; returns
    /// every thread's final parameters.
    fn train_threads(opt: &str, lr: f64, size: usize, shard: bool, path: &Path) -> Vec<Vec<f64>> {
        let (train, test) = (blobs(1, 66), blobs(2, 30));
        let handles: Vec<_> = Threads::world(size)
            .into_iter()
            .map(|mut comm| {
                let (train, test, path) = (train.clone(), test.clone(), path.to_path_buf());
                let opt = opt.to_string();
                std::thread::spawn(move || {
                    let mut t = trainer(&opt, lr, 3);
                    let mut rep =
                        Replicas::new(&mut comm, &mut t, shard, &[&train, &test]).unwrap();
                    while t.epoch() < 3 {
                        t.run_epoch_with(&train, &test, &mut Silent, &mut rep)
                            .unwrap();
                    }
                    rep.save(&t, &path).unwrap();
                    assert_eq!(rep.stats().steps, 15);
                    t.network().params().to_vec()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn threads_plain_and_sharded_agree_with_one_process() {
        let dir = std::env::temp_dir().join(format!("optdsl-parallel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (train, test) = (blobs(1, 66), blobs(2, 30));
        for (opt, lr) in [("adam", 0.01), ("lamb", 0.01), ("sgd", 0.3)] {
            let mut one = trainer(opt, lr, 3);
            one.fit(&train, &test, &mut Silent).unwrap();
            let alone = one.state();
            for (size, shard) in [(2, false), (2, true), (3, true), (4, true)] {
                let path = dir.join(format!("{opt}-{size}-{shard}.ckpt"));
                let params = train_threads(opt, lr, size, shard, &path);
                for p in &params {
                    assert_eq!(p, &params[0], "every process holds the same parameters");
                    let d = max_rel(p, &alone.params);
                    assert!(d < 1e-12, "{opt} on {size} (shard {shard}): {d:e}");
                }
                let saved = TrainerState::<f64>::load(&path).unwrap();
                assert_eq!(saved.optimizer.lens(), alone.optimizer.lens());
                let (a, b) = (&saved.records[2], &alone.records[2]);
                assert!((a.train_loss - b.train_loss).abs() < 1e-12 * b.train_loss);
                assert_eq!(a.test_accuracy, b.test_accuracy);
                let d = max_rel(&state_buffers(&saved), &state_buffers(&alone));
                assert!(d < 1e-10, "{opt} on {size}: optimizer state {d:e}");
                // The gathered checkpoint resumes in one process.
                let mut resumed = trainer(opt, lr, 3);
                resumed.resume(&path, 4).unwrap();
                let mut straight = trainer(opt, lr, 3);
                straight.resume_from(alone.clone(), &path, 4).unwrap();
                resumed.fit(&train, &test, &mut Silent).unwrap();
                straight.fit(&train, &test, &mut Silent).unwrap();
                let d = max_rel(resumed.network().params(), straight.network().params());
                assert!(d < 1e-11, "{opt} resumed from {size}: {d:e}");
            }
        }
    }

    #[test]
    fn aligned_shards_cut_at_blocks_of_each_tensor() {
        let lens = [1000, 600, 3];
        let r = align_shards(&shard_ranges(&lens, 3, false), &lens, 256);
        assert_eq!(r, vec![0..512, 512..1000, 1000..1603]);
        assert_eq!(r.iter().map(|r| r.len()).sum::<usize>(), 1603);
    }

    #[test]
    fn shards_cover_the_buffer_and_keep_whole_tensors_when_asked() {
        let lens = [32768, 8192, 640, 128, 64, 10];
        for n in 1..=7 {
            for whole in [false, true] {
                let r = shard_ranges(&lens, n, whole);
                assert_eq!(r.len(), n);
                assert_eq!((r[0].start, r[n - 1].end), (0, 41802));
                assert!(r.windows(2).all(|w| w[0].end == w[1].start));
                if whole {
                    let bounds = [0, 32768, 40960, 41600, 41728, 41792, 41802];
                    assert!(r.iter().all(|x| bounds.contains(&x.start)));
                } else {
                    let max = r.iter().map(|x| x.len()).max().unwrap();
                    assert_eq!(max, 41802usize.div_ceil(n));
                }
            }
        }
        assert_eq!(shard_ranges(&lens, 2, true), vec![0..32768, 32768..41802]);
        assert_eq!(
            shard_ranges(&[3], 5, false),
            vec![0..1, 1..2, 2..3, 3..3, 3..3]
        );
        assert!(builtin_rule("lamb").unwrap().info().has_reduction());
        assert!(!builtin_rule("adam").unwrap().info().has_reduction());
    }

    #[test]
    fn sliced_optimizers_step_like_the_whole_and_join_back() {
        let mut whole = Optimizer::<f32>::new();
        whole.add_group(builtin_rule("nadam").unwrap(), &[7, 5]);
        whole.add_group(builtin_rule("adam").unwrap(), &[4]);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut w: Vec<f32> = (0..16).map(|_| rng.random::<f32>() - 0.5).collect();
        let ranges = shard_ranges(&[7, 5, 4], 3, false);
        let mut parts: Vec<Optimizer<f32>> = ranges
            .iter()
            .map(|r| whole.slice(r.clone()).unwrap())
            .collect();
        let mut w_parts = w.clone();
        for _ in 0..4 {
            let g: Vec<f32> = (0..16).map(|_| rng.random::<f32>() - 0.5).collect();
            whole.step_flat(&mut w, &g).unwrap();
            for (opt, r) in parts.iter_mut().zip(&ranges) {
                opt.step_flat(&mut w_parts[r.clone()], &g[r.clone()])
                    .unwrap();
            }
        }
        assert_eq!(w, w_parts, "pieces step bit for bit as the whole");
        let states: Vec<_> = parts.iter().map(Optimizer::state).collect();
        let lens = whole.state().lens();
        let joined = OptimizerState::join(states.clone(), &lens).unwrap();
        assert_eq!(joined, whole.state());
        // Pieces that disagree, or do not fill the tensors, are refused.
        let mut bad = states.clone();
        bad[1].groups[0].states[0].scalars[0] += 1.0;
        let err = OptimizerState::join(bad, &lens).unwrap_err();
        assert!(
            err.to_string().contains("differ in step count or scalars"),
            "{err}"
        );
        let err = OptimizerState::join(states[..2].to_vec(), &lens).unwrap_err();
        assert!(err.to_string().contains("pieces end before"), "{err}");
        assert!(whole.state().slice(3..17).is_err());
    }
}
