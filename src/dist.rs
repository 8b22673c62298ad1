//! MPI for data-parallel training (cargo feature `mpi`): [`Mpi`] starts MPI
//! (Open MPI through the `mpi` crate) and is the [`Collective`] that
//! [`crate::parallel::Replicas`] runs on, the world communicator's
//! all-reduce, reduce-scatter, all-gather, gather and broadcast. It lives in
//! the facade, beside the command line that uses it, so that the feature
//! leaves `optdsl-runtime`'s own features (and so its build) alone.

use mpi::datatype::{Equivalence, PartitionMut};
use mpi::environment::{Threading, Universe};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::{CommunicatorCollectives, Root};
use mpi::Count;
use optdsl_runtime::error::{Error, Result};
use optdsl_runtime::parallel::Collective;

/// MPI, started: the world of processes `mpirun` launched (one process alone,
/// size 1, when started without it). MPI is finalized when this is dropped.
pub struct Mpi {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    _universe: Universe,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpi")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .finish()
    }
}

impl Mpi {
    /// Starts MPI (once per process; a second call is an error). Only the
    /// calling thread makes MPI calls (rayon's threads never do).
    pub fn init() -> Result<Self> {
        let (universe, _) =
            mpi::initialize_with_threading(Threading::Funneled).ok_or_else(|| Error::Invalid {
                what: "MPI".into(),
                reason: "it was started already in this process".into(),
            })?;
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        Ok(Mpi {
            world,
            rank,
            size,
            _universe: universe,
        })
    }

    /// Ends every process of the run with exit code `code` (MPI_Abort): what
    /// a process that fails does, so that the others do not wait for it.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}

fn count(what: &str, n: usize) -> Result<Count> {
    Count::try_from(n).map_err(|_| Error::Invalid {
        what: what.into(),
        reason: format!("{n} elements are more than one MPI message carries"),
    })
}

fn check(what: &str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what: what.into(),
            expected,
            got,
        })
    }
}

impl<F: Equivalence> Collective<F> for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_reduce(&mut self, send: &[F], recv: &mut [F]) -> Result<()> {
        check("the all-reduce's receive buffer", send.len(), recv.len())?;
        count("all-reduce", send.len())?;
        self.world
            .all_reduce_into(send, recv, mpi::collective::SystemOperation::sum());
        Ok(())
    }

    fn all_reduce_f64(&mut self, send: &[f64], recv: &mut [f64]) -> Result<()> {
        check("the all-reduce's receive buffer", send.len(), recv.len())?;
        self.world
            .all_reduce_into(send, recv, mpi::collective::SystemOperation::sum());
        Ok(())
    }

    fn reduce_scatter(&mut self, send: &[F], recv: &mut [F]) -> Result<()> {
        check(
            "the reduce-scatter's send buffer",
            recv.len() * self.size,
            send.len(),
        )?;
        count("reduce-scatter", send.len())?;
        self.world
            .reduce_scatter_block_into(send, recv, mpi::collective::SystemOperation::sum());
        Ok(())
    }

    fn all_gather(&mut self, send: &[F], recv: &mut [F]) -> Result<()> {
        check(
            "the all-gather's receive buffer",
            send.len() * self.size,
            recv.len(),
        )?;
        count("all-gather", recv.len())?;
        self.world.all_gather_into(send, recv);
        Ok(())
    }

    fn gather_bytes(&mut self, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
        let root = self.world.process_at_rank(0);
        let len = count("gathered bytes", bytes.len())?;
        if self.rank != 0 {
            root.gather_into(&len);
            root.gather_varcount_into(bytes);
            return Ok(None);
        }
        let mut counts: Vec<Count> = vec![0; self.size];
        root.gather_into_root(&len, &mut counts[..]);
        let displs: Vec<Count> = counts
            .iter()
            .scan(0, |at, &c| {
                let d = *at;
                *at += c;
                Some(d)
            })
            .collect();
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        count("gathered bytes", total)?;
        let mut all = vec![0u8; total];
        {
            let mut part = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            root.gather_varcount_into_root(bytes, &mut part);
        }
        Ok(Some(
            counts
                .iter()
                .zip(&displs)
                .map(|(&c, &d)| all[d as usize..(d + c) as usize].to_vec())
                .collect(),
        ))
    }

    fn broadcast_bytes(&mut self, bytes: &mut Vec<u8>) -> Result<()> {
        let root = self.world.process_at_rank(0);
        let mut len = count("broadcast bytes", bytes.len())?;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        if len > 0 {
            root.broadcast_into(&mut bytes[..]);
        }
        Ok(())
    }
}
