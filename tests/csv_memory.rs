//! Reading a CSV file keeps at most about 1.5 times the loaded matrix in
//! memory at once: the file is read as a stream into a buffer of the final
//! size, and split into training and test rows in place. Measured with a
//! global allocator that counts the bytes allocated, and their peak.

use optdsl::data::{CsvOptions, DataSource};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = NOW.fetch_add(bytes, Ordering::SeqCst) + bytes;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        NOW.fetch_sub(layout.size(), Ordering::SeqCst);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                NOW.fetch_sub(layout.size() - new_size, Ordering::SeqCst);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn a_csv_file_loads_within_one_and_a_half_times_its_matrix() {
    let dir = std::env::temp_dir().join(format!("optdsl-csv-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wide.csv");
    let (rows, dim) = (20_000usize, 100usize);
    let mut text = String::from("label,values\n");
    for i in 0..rows {
        text += &(i % 10).to_string();
        for j in 0..dim {
            text += &format!(",{}", (i * 31 + j * 17) % 256);
        }
        text += "\n";
    }
    std::fs::write(&path, &text).unwrap();
    drop(text);
    let matrix = rows * dim * 8 + rows * 4;
    let before = NOW.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let split = DataSource::Csv(path.clone())
        .load(&CsvOptions::default(), None, 0)
        .unwrap();
    let peak = PEAK.load(Ordering::SeqCst) - before;
    assert_eq!(split.train.len() + split.test.len(), rows);
    assert_eq!(split.train.dim(), dim);
    assert!(
        peak as f64 <= 1.5 * matrix as f64,
        "peak {peak} bytes for a matrix of {matrix} bytes ({:.2}x)",
        peak as f64 / matrix as f64
    );
    eprintln!(
        "peak {peak} bytes for a matrix of {matrix} bytes ({:.2}x)",
        peak as f64 / matrix as f64
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
