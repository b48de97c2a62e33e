//! `MemVfs` keeps exactly what POSIX promises survives a power failure.

use std::path::Path;

use aegis_log::{MemVfs, Vfs};

#[test]
fn only_synced_entries_and_contents_survive_a_crash() {
    let vfs = MemVfs::new();
    let dir = Path::new("/d");
    let (a, b) = (dir.join("a"), dir.join("b"));

    let file = vfs.create(&a).unwrap();
    file.write_all_at(b"hello", 0).unwrap();
    assert!(
        vfs.crash(None).read(&a).is_none(),
        "an unsynced directory entry is lost"
    );

    vfs.sync_dir(dir).unwrap();
    assert_eq!(
        vfs.crash(None).read(&a).unwrap(),
        b"",
        "unsynced contents are lost"
    );

    file.sync_data().unwrap();
    file.write_all_at(b" world", 5).unwrap();
    assert_eq!(vfs.crash(None).read(&a).unwrap(), b"hello");
    let torn = vfs.crash(Some(7)).read(&a).unwrap();
    assert!(
        torn.len() >= 5 && b"hello world".starts_with(&torn),
        "a torn write keeps a prefix"
    );

    vfs.rename(&a, &b).unwrap();
    let crashed = vfs.crash(None);
    assert!(
        crashed.read(&b).is_none() && crashed.read(&a).is_some(),
        "rename needs a dir sync"
    );
    vfs.sync_dir(dir).unwrap();
    let crashed = vfs.crash(None);
    assert!(crashed.read(&a).is_none() && crashed.read(&b).is_some());

    vfs.remove(&b).unwrap();
    assert!(
        vfs.crash(None).read(&b).is_some(),
        "removal needs a dir sync"
    );
    vfs.sync_dir(dir).unwrap();
    assert!(vfs.crash(None).read(&b).is_none());
}

#[test]
fn rewrites_below_the_synced_length_are_not_torn_in() {
    let vfs = MemVfs::new();
    let path = Path::new("/d/f");
    let file = vfs.create(path).unwrap();
    vfs.sync_dir(Path::new("/d")).unwrap();
    file.write_all_at(b"abcdef", 0).unwrap();
    file.sync_data().unwrap();
    file.set_len(2).unwrap();
    file.write_all_at(b"XYZW", 2).unwrap();
    for seed in 0..10 {
        assert_eq!(vfs.crash(Some(seed)).read(path).unwrap(), b"abcdef");
    }
    file.sync_data().unwrap();
    assert_eq!(vfs.crash(None).read(path).unwrap(), b"abXYZW");
}
