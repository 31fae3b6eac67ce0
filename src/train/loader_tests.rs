use super::*;
use crate::train::data::tests::write_png;

fn folder(dir: &std::path::Path) -> ImageFolder {
    write_png(&dir.join("small.png"), 12, 20, 10);
    write_png(&dir.join("wide.png"), 90, 40, 120);
    write_png(&dir.join("sub/big.png"), 64, 64, 250);
    ImageFolder::open(dir, None).unwrap()
}

fn take(loader: CropLoader, n: usize) -> Vec<Tensor> {
    loader.take(n).map(|b| b.unwrap()).collect()
}

fn config(workers: usize, seed: u64) -> CropConfig {
    CropConfig { rescale: Some((0.5, 1.5)), workers, prefetch: 2, ..CropConfig::new(16, 3, seed) }
}

#[test]
fn batches_have_the_crop_shape_and_unit_range() {
    let dir = tempfile::tempdir().unwrap();
    let batch = take(CropLoader::new(&folder(dir.path()), config(2, 0)).unwrap(), 1).remove(0);
    assert_eq!(batch.size(), [3, 3, 16, 16]);
    assert_eq!(batch.kind(), tch::Kind::Float);
    assert!(batch.min().double_value(&[]) >= 0.0 && batch.max().double_value(&[]) <= 1.0);
}

#[test]
fn batches_depend_only_on_seed_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let files = folder(dir.path());
    let one = take(CropLoader::new(&files, config(1, 7)).unwrap(), 6);
    let three = take(CropLoader::new(&files, config(3, 7)).unwrap(), 6);
    for (a, b) in one.iter().zip(&three) {
        assert!(a.equal(b), "worker count changed a batch");
    }
    assert!(!one[0].equal(&one[1]), "consecutive batches differ");
    let other_seed = take(CropLoader::new(&files, config(2, 8)).unwrap(), 1);
    assert!(!one[0].equal(&other_seed[0]), "the seed matters");

    let mut resumed = CropLoader::new(&files, config(2, 7)).unwrap();
    let _ = resumed.next();
    resumed.skip_to(4);
    assert_eq!(resumed.position(), 4);
    let tail = take(resumed, 2);
    assert!(tail[0].equal(&one[4]) && tail[1].equal(&one[5]), "skip_to(k) continues at batch k");
}

#[test]
fn undecodable_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = folder(dir.path()).files().to_vec();
    let truncated = dir.path().join("truncated.png");
    let bytes = std::fs::read(&files[0]).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    files.push(truncated);
    let loader = CropLoader::new(&ImageFolder::from_files(files), config(2, 1)).unwrap();
    assert_eq!(take(loader, 8).len(), 8);
}

/// Throughput on a real image folder: `PATCHSCALER_TRAIN_DATA=dir cargo test
/// --release --lib loader_throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn loader_throughput() {
    let Some(dir) = std::env::var_os("PATCHSCALER_TRAIN_DATA") else { return };
    let files = ImageFolder::open(&dir, Some("train")).or_else(|_| ImageFolder::open(&dir, None)).unwrap();
    for (workers, cache_mib) in [(2, 0), (2, 1024)] {
        let config = CropConfig { workers, cache_mib, ..CropConfig::new(256, 8, 0) };
        let mut loader = CropLoader::new(&files, config).unwrap();
        let start = std::time::Instant::now();
        let n = 20;
        for batch in loader.by_ref().take(n) {
            let _ = batch.unwrap();
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        eprintln!("{} images, workers {workers}, cache {cache_mib} MiB: {rate:.2} batches/s (8 x 256^2)", files.len());
    }
}
