//! Reading image archives: which image names an OCI layout, OCI archive or docker-archive
//! carries, and turning an OCI layout directory into an archive a runtime can import.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What kind of image archive a path holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory with `oci-layout`, `index.json` and `blobs/`.
    OciLayout,
    /// A tarball of an OCI layout.
    OciArchive,
    /// `docker save` output: `manifest.json` with RepoTags.
    DockerArchive,
}

/// Opens a file as a tar stream, transparently un-gzipping it.
fn open_tar(path: &Path) -> Result<tar::Archive<Box<dyn Read>>> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(io(path))?;
    let f = std::fs::File::open(path).map_err(io(path))?;
    let reader: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)))
    } else {
        Box::new(std::io::BufReader::new(f))
    };
    Ok(tar::Archive::new(reader))
}

/// `index.json` and `manifest.json`, when present.
type Metadata = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The top-level metadata files of an archive (`index.json`, `manifest.json`), read in one pass.
fn metadata_files(path: &Path) -> Result<Metadata> {
    if path.is_dir() {
        let read = |name: &str| std::fs::read(path.join(name)).ok();
        return Ok((read("index.json"), read("manifest.json")));
    }
    let mut ar = open_tar(path)?;
    let (mut index, mut manifest) = (None, None);
    for entry in ar.entries().map_err(io(path))? {
        let mut e = entry.map_err(io(path))?;
        let name = e
            .path()
            .map_err(io(path))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let slot = match name.as_str() {
            "index.json" => &mut index,
            "manifest.json" => &mut manifest,
            _ => continue,
        };
        let mut buf = Vec::new();
        e.read_to_end(&mut buf).map_err(io(path))?;
        *slot = Some(buf);
    }
    Ok((index, manifest))
}

/// Classifies an archive.
pub fn kind(path: &Path) -> Result<Kind> {
    let (index, manifest) = metadata_files(path)?;
    match (path.is_dir(), index, manifest) {
        (true, Some(_), _) => Ok(Kind::OciLayout),
        (false, _, Some(_)) => Ok(Kind::DockerArchive),
        (false, Some(_), None) => Ok(Kind::OciArchive),
        _ => Err(Error::Format {
            path: path.to_path_buf(),
            message:
                "not an OCI layout, OCI archive or docker-archive (no index.json or manifest.json)"
                    .into(),
        }),
    }
}

/// The full image names (`docker.io/library/busybox:1.35`) an archive carries.
pub fn image_names(path: &Path) -> Result<Vec<String>> {
    let (index, manifest) = metadata_files(path)?;
    let bad = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    let mut names = Vec::new();
    if let Some(m) = manifest {
        let v: Value =
            serde_json::from_slice(&m).map_err(|e| bad(format!("manifest.json: {e}")))?;
        for entry in v.as_array().into_iter().flatten() {
            for tag in entry["RepoTags"].as_array().into_iter().flatten() {
                if let Some(t) = tag.as_str() {
                    names.push(crate::cri::normalize_image(t));
                }
            }
        }
    } else if let Some(i) = index {
        let v: Value = serde_json::from_slice(&i).map_err(|e| bad(format!("index.json: {e}")))?;
        for m in v["manifests"].as_array().into_iter().flatten() {
            let ann = &m["annotations"];
            let name = ann["io.containerd.image.name"]
                .as_str()
                .or_else(|| ann["org.opencontainers.image.ref.name"].as_str())
                .filter(|n| n.contains('/') || n.contains(':'));
            if let Some(n) = name {
                names.push(crate::cri::normalize_image(n));
            }
        }
    } else {
        return Err(bad(
            "not an OCI layout, OCI archive or docker-archive (no index.json or manifest.json)"
                .into(),
        ));
    }
    names.dedup();
    if names.is_empty() {
        return Err(bad(
            "the archive names no image: give its images full reference names (docker.io/library/busybox:latest)"
                .into(),
        ));
    }
    Ok(names)
}

/// Packs an OCI layout directory into a tarball at `out` (runtimes import archives, not
/// directories).
pub fn pack_layout(dir: &Path, out: &Path) -> Result<()> {
    let f = std::fs::File::create(out).map_err(io(out))?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    b.follow_symlinks(true);
    b.append_dir_all(".", dir).map_err(io(dir))?;
    b.into_inner()
        .and_then(|mut w| std::io::Write::flush(&mut w))
        .map_err(io(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::build::{File, ImageSpec, write_oci_archive};

    #[test]
    fn oci_archives_name_their_images_and_layouts_pack_into_archives() {
        let dir = tempfile::tempdir().unwrap();
        let tar = dir.path().join("img.tar");
        let spec = ImageSpec {
            names: vec!["docker.io/library/demo:1".into(), "demo:latest".into()],
            files: vec![File::regular("hello", b"hi".to_vec(), 0o644)],
            entrypoint: vec![],
            cmd: vec!["/hello".into()],
            env: vec![],
            working_dir: String::new(),
            exposed_ports: vec![],
        };
        write_oci_archive(&spec, &tar).unwrap();
        assert_eq!(kind(&tar).unwrap(), Kind::OciArchive);
        assert_eq!(
            image_names(&tar).unwrap(),
            vec![
                "docker.io/library/demo:1".to_string(),
                "docker.io/library/demo:latest".to_string()
            ]
        );

        let layout = dir.path().join("layout");
        std::fs::create_dir(&layout).unwrap();
        let mut ar = tar::Archive::new(std::fs::File::open(&tar).unwrap());
        ar.unpack(&layout).unwrap();
        assert_eq!(kind(&layout).unwrap(), Kind::OciLayout);
        let packed = dir.path().join("packed.tar");
        pack_layout(&layout, &packed).unwrap();
        assert_eq!(image_names(&packed).unwrap().len(), 2);
    }

    #[test]
    fn docker_archives_name_their_images_by_repo_tags() {
        let dir = tempfile::tempdir().unwrap();
        let tar = dir.path().join("d.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&tar).unwrap());
        let manifest = br#"[{"Config":"c.json","RepoTags":["busybox:1.35"],"Layers":[]}]"#;
        let mut h = tar::Header::new_ustar();
        h.set_size(manifest.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "manifest.json", &manifest[..])
            .unwrap();
        b.finish().unwrap();
        assert_eq!(kind(&tar).unwrap(), Kind::DockerArchive);
        assert_eq!(
            image_names(&tar).unwrap(),
            vec!["docker.io/library/busybox:1.35".to_string()]
        );
    }

    #[test]
    fn archives_without_names_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let tar = dir.path().join("x.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&tar).unwrap());
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        h.set_cksum();
        b.append_data(&mut h, "other", &b"{}"[..]).unwrap();
        b.finish().unwrap();
        let err = image_names(&tar).unwrap_err().to_string();
        assert!(err.contains("not an OCI layout"), "{err}");
    }
}
