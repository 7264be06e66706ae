//! Images without a registry: the archives a node imports (`ferrokube images import`, and every
//! tarball in `DATA_DIR/agent/images/` at start, as k3s's air-gap images), the pause image built
//! from this crate's own static program, and the test images built from Debian packages.

use std::path::{Path, PathBuf};

use crate::cri::Runtime;

pub mod archive;
pub mod build;

/// Imports every `*.tar`, `*.tar.gz` and `*.tgz` in `dir` (and every OCI layout directory),
/// skipping archives whose images are all present already. Returns the names imported; a bad
/// archive is logged and skipped so one broken file cannot keep a node from starting.
pub async fn import_dir(runtime: &dyn Runtime, dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut imported = Vec::new();
    for p in paths {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let is_archive =
            name.ends_with(".tar") || name.ends_with(".tar.gz") || name.ends_with(".tgz");
        if !is_archive && !p.join("index.json").exists() {
            continue;
        }
        match import_if_missing(runtime, &p).await {
            Ok(names) => imported.extend(names),
            Err(e) => tracing::warn!(path = %p.display(), error = %e, "could not import images"),
        }
    }
    imported
}

/// Imports an archive unless every image it names is present.
pub async fn import_if_missing(
    runtime: &dyn Runtime,
    path: &Path,
) -> Result<Vec<String>, crate::cri::Error> {
    let names = archive::image_names(path).map_err(|e| crate::cri::Error::Failed(e.to_string()))?;
    let mut missing = false;
    for n in &names {
        if runtime.image_status(n).await?.is_none() {
            missing = true;
            break;
        }
    }
    if !missing {
        return Ok(Vec::new());
    }
    let imported = runtime.import_images(path).await?;
    tracing::info!(path = %path.display(), images = ?imported, "imported images");
    Ok(imported)
}

/// Makes sure the pause image is present, writing its archive under `work_dir` and importing it.
pub async fn ensure_pause_image(
    runtime: &dyn Runtime,
    work_dir: &Path,
) -> Result<(), crate::cri::Error> {
    if runtime.image_status(build::PAUSE_IMAGE).await?.is_some() {
        return Ok(());
    }
    let path = work_dir.join("pause.tar");
    build::write_oci_archive(&build::pause_image(), &path)
        .map_err(|e| crate::cri::Error::Failed(e.to_string()))?;
    runtime.import_images(&path).await?;
    Ok(())
}
