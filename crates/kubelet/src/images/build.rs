//! Building images without a registry: an OCI archive (one uncompressed layer, a config, a
//! manifest, an index naming the image) from a list of files. The pause image comes from the
//! static program embedded in this crate; test images come from Debian's `busybox-static`
//! (and, when asked, Debian's nginx and redis with the libraries they link).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::archive::{Error, Result};

/// The sandbox image every pod's pause container runs.
pub const PAUSE_IMAGE: &str = "docker.io/ferrokube/pause:3.10";
/// The static pause program, built by this crate's build script.
pub const PAUSE_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));

/// The test images, by the names pods use.
pub const BUSYBOX_IMAGES: &[&str] = &[
    "docker.io/library/busybox:latest",
    "docker.io/library/busybox:1.35",
];
/// busybox's httpd serving `/usr/share/nginx/html` on port 80: stands in for nginx.
pub const HTTPD_IMAGE: &str = "docker.io/ferrokube/busybox-httpd:latest";

/// One entry of an image's filesystem.
#[derive(Clone, Debug)]
pub enum File {
    Dir {
        path: String,
        mode: u32,
    },
    Regular {
        path: String,
        data: Vec<u8>,
        mode: u32,
    },
    Symlink {
        path: String,
        target: String,
    },
}

impl File {
    pub fn regular(path: &str, data: Vec<u8>, mode: u32) -> File {
        File::Regular {
            path: path.trim_start_matches('/').to_string(),
            data,
            mode,
        }
    }
    pub fn dir(path: &str, mode: u32) -> File {
        File::Dir {
            path: path.trim_start_matches('/').to_string(),
            mode,
        }
    }
    pub fn symlink(path: &str, target: &str) -> File {
        File::Symlink {
            path: path.trim_start_matches('/').to_string(),
            target: target.to_string(),
        }
    }
    fn path(&self) -> &str {
        match self {
            File::Dir { path, .. } | File::Regular { path, .. } | File::Symlink { path, .. } => {
                path
            }
        }
    }
}

/// What an image is: its names, files and run configuration.
#[derive(Clone, Debug, Default)]
pub struct ImageSpec {
    pub names: Vec<String>,
    pub files: Vec<File>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub exposed_ports: Vec<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The layer tarball: parent directories first, entries sorted, owned by root, mtime 0, so the
/// same files always give the same digest.
fn layer(files: &[File]) -> std::io::Result<Vec<u8>> {
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    for f in files {
        let mut p = Path::new(f.path()).parent();
        while let Some(d) = p {
            let s = d.to_string_lossy().to_string();
            if s.is_empty() {
                break;
            }
            dirs.insert(s);
            p = d.parent();
        }
    }
    let explicit: BTreeSet<&str> = files
        .iter()
        .filter(|f| matches!(f, File::Dir { .. }))
        .map(File::path)
        .collect();
    let mut entries: Vec<File> = dirs
        .into_iter()
        .filter(|d| !explicit.contains(d.as_str()))
        .map(|d| File::Dir {
            path: d,
            mode: 0o755,
        })
        .chain(files.iter().cloned())
        .collect();
    entries.sort_by(|a, b| a.path().cmp(b.path()));
    let mut b = tar::Builder::new(Vec::new());
    for e in &entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        match e {
            File::Dir { path, mode } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, format!("{path}/"), std::io::empty())?;
            }
            File::Regular { path, data, mode } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, &data[..])?;
            }
            File::Symlink { path, target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target)?;
            }
        }
    }
    b.into_inner()
}

/// Writes `spec` as an OCI archive (`oci-layout`, `index.json`, `blobs/sha256/...`) whose index
/// names the image with `io.containerd.image.name` for each of its names.
pub fn write_oci_archive(spec: &ImageSpec, out: &Path) -> Result<()> {
    let layer = layer(&spec.files).map_err(io(out))?;
    let layer_digest = format!("sha256:{}", sha256_hex(&layer));
    let mut config = json!({
        "architecture": go_arch(),
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "ferrokube images build"}],
    });
    let c = &mut config["config"];
    if !spec.entrypoint.is_empty() {
        c["Entrypoint"] = json!(spec.entrypoint);
    }
    if !spec.cmd.is_empty() {
        c["Cmd"] = json!(spec.cmd);
    }
    let mut env =
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()];
    env.extend(spec.env.iter().cloned());
    c["Env"] = json!(env);
    if !spec.working_dir.is_empty() {
        c["WorkingDir"] = json!(spec.working_dir);
    }
    if !spec.exposed_ports.is_empty() {
        let ports: serde_json::Map<String, serde_json::Value> = spec
            .exposed_ports
            .iter()
            .map(|p| (p.clone(), json!({})))
            .collect();
        c["ExposedPorts"] = json!(ports);
    }
    let config = serde_json::to_vec(&config).expect("config serializes");
    let config_digest = format!("sha256:{}", sha256_hex(&config));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    }))
    .expect("manifest serializes");
    let manifest_digest = format!("sha256:{}", sha256_hex(&manifest));
    let manifests: Vec<serde_json::Value> = spec
        .names
        .iter()
        .map(|n| {
            let full = crate::cri::normalize_image(n);
            let tag = full.rsplit(':').next().unwrap_or("latest").to_string();
            json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest.len(),
                "annotations": {
                    "io.containerd.image.name": full,
                    "org.opencontainers.image.ref.name": tag,
                },
                "platform": {"architecture": go_arch(), "os": "linux"},
            })
        })
        .collect();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))
    .expect("index serializes");

    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = out.with_extension("tmp");
    let f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    let mut add = |name: &str, data: &[u8]| -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, name, data)
    };
    let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io(&tmp))?;
    add(&blob(&layer_digest), &layer).map_err(io(&tmp))?;
    add(&blob(&config_digest), &config).map_err(io(&tmp))?;
    add(&blob(&manifest_digest), &manifest).map_err(io(&tmp))?;
    add("index.json", &index).map_err(io(&tmp))?;
    let mut w = b.into_inner().map_err(io(&tmp))?;
    w.flush().map_err(io(&tmp))?;
    drop(w);
    std::fs::rename(&tmp, out).map_err(io(out))
}

/// The architecture name images use (Go's GOARCH).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    }
}

/// The pause image.
pub fn pause_image() -> ImageSpec {
    ImageSpec {
        names: vec![PAUSE_IMAGE.into()],
        files: vec![File::regular("pause", PAUSE_BINARY.to_vec(), 0o755)],
        entrypoint: vec!["/pause".into()],
        ..Default::default()
    }
}

/// The files every small Linux image needs: users, groups, scratch directories.
fn base_files() -> Vec<File> {
    vec![
        File::regular(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n".to_vec(),
            0o644,
        ),
        File::regular(
            "etc/group",
            b"root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n".to_vec(),
            0o644,
        ),
        File::dir("root", 0o700),
        File::dir("tmp", 0o1777),
        File::dir("home", 0o755),
        File::dir("var/www", 0o755),
        File::dir("proc", 0o555),
        File::dir("sys", 0o555),
        File::dir("dev", 0o755),
        File::dir("etc", 0o755),
    ]
}

/// busybox's files: the static binary and a link for each applet it lists.
fn busybox_files(busybox: &Path) -> Result<Vec<File>> {
    let data = std::fs::read(busybox).map_err(io(busybox))?;
    let out = std::process::Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(io(busybox))?;
    if !out.status.success() {
        return Err(Error::Format {
            path: busybox.to_path_buf(),
            message: "busybox --list-full failed: is this busybox-static?".into(),
        });
    }
    let mut files = base_files();
    files.push(File::regular("bin/busybox", data, 0o755));
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let applet = applet.trim().trim_start_matches('/');
        if applet.is_empty() || applet == "bin/busybox" {
            continue;
        }
        files.push(File::symlink(applet, "/bin/busybox"));
    }
    Ok(files)
}

/// Where Debian's busybox-static installs the static binary.
pub const DEBIAN_BUSYBOX: &str = "/bin/busybox";

/// `busybox:latest` and `busybox:1.35`, from Debian's busybox-static.
pub fn busybox_image(busybox: &Path) -> Result<ImageSpec> {
    Ok(ImageSpec {
        names: BUSYBOX_IMAGES.iter().map(|s| s.to_string()).collect(),
        files: busybox_files(busybox)?,
        cmd: vec!["sh".into()],
        ..Default::default()
    })
}

/// busybox httpd serving `/usr/share/nginx/html` on port 80, nginx's document root, so the
/// course's nginx examples (which mount volumes there) work unchanged but for the image name.
pub fn httpd_image(busybox: &Path) -> Result<ImageSpec> {
    let mut files = busybox_files(busybox)?;
    files.push(File::regular(
        "usr/share/nginx/html/index.html",
        b"<!DOCTYPE html>\n<html>\n<head><title>Welcome to busybox httpd!</title></head>\n<body>\n<h1>Welcome to busybox httpd!</h1>\n<p>ferrokube's stand-in for nginx: busybox httpd serving /usr/share/nginx/html.</p>\n</body>\n</html>\n".to_vec(),
        0o644,
    ));
    Ok(ImageSpec {
        names: vec![HTTPD_IMAGE.into()],
        files,
        cmd: vec![
            "httpd".into(),
            "-f".into(),
            "-v".into(),
            "-p".into(),
            "80".into(),
            "-h".into(),
            "/usr/share/nginx/html".into(),
        ],
        exposed_ports: vec!["80/tcp".into()],
        ..Default::default()
    })
}

/// A dynamically linked program with every library `ldd` says it needs, from `root` (a tree
/// extracted from Debian packages, or `/`).
fn program_with_libraries(root: &Path, program: &str, files: &mut Vec<File>) -> Result<()> {
    let host_path = root.join(program.trim_start_matches('/'));
    let data = std::fs::read(&host_path).map_err(io(&host_path))?;
    files.push(File::regular(program, data, 0o755));
    let mut lib_path = vec![
        root.join("usr/lib").join(multiarch()),
        root.join("lib").join(multiarch()),
    ];
    lib_path.retain(|p| p.exists());
    let joined = std::env::join_paths(&lib_path).unwrap_or_default();
    let out = std::process::Command::new("ldd")
        .arg(&host_path)
        .env("LD_LIBRARY_PATH", joined)
        .output()
        .map_err(io(Path::new("ldd")))?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let real = std::fs::canonicalize(path).map_err(io(Path::new(path)))?;
        let data = std::fs::read(&real).map_err(io(&real))?;
        // Keep the path the program was linked against, and the loader at its fixed place.
        let inside = match path.strip_prefix(&*root.to_string_lossy()) {
            Some(p) if root != Path::new("/") => p.to_string(),
            _ => path.to_string(),
        };
        files.push(File::regular(&inside, data, 0o755));
    }
    Ok(())
}

fn multiarch() -> String {
    format!("{}-linux-gnu", std::env::consts::ARCH)
}

/// Downloads Debian packages with `apt-get download` and unpacks them into `dir` (no
/// installation, so no daemon is started on the host).
fn debian_packages(packages: &[&str], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let status = std::process::Command::new("apt-get")
        .arg("download")
        .args(packages)
        .current_dir(dir)
        .status()
        .map_err(io(Path::new("apt-get")))?;
    if !status.success() {
        return Err(Error::Format {
            path: dir.to_path_buf(),
            message: format!(
                "apt-get download {} failed (run apt-get update first?)",
                packages.join(" ")
            ),
        });
    }
    let root = dir.join("root");
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let p = e.map_err(io(dir))?.path();
        if p.extension().is_some_and(|x| x == "deb") {
            let st = std::process::Command::new("dpkg-deb")
                .arg("-x")
                .arg(&p)
                .arg(&root)
                .status()
                .map_err(io(&p))?;
            if !st.success() {
                return Err(Error::Format {
                    path: p,
                    message: "dpkg-deb -x failed".into(),
                });
            }
        }
    }
    Ok(())
}

/// `nginx:latest` from Debian's nginx package (busybox for the shell), logging to
/// stdout/stderr, serving `/usr/share/nginx/html` on port 80 like the official image.
pub fn nginx_image(busybox: &Path, work: &Path) -> Result<ImageSpec> {
    debian_packages(&["nginx", "nginx-common"], work)?;
    let root = work.join("root");
    let mut files = busybox_files(busybox)?;
    program_with_libraries(&root, "/usr/sbin/nginx", &mut files)?;
    let conf = b"user www-data;\nworker_processes 1;\npid /run/nginx.pid;\nerror_log stderr notice;\nevents { worker_connections 512; }\nhttp {\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n  access_log /dev/stdout;\n  sendfile on;\n  server {\n    listen 80 default_server;\n    root /usr/share/nginx/html;\n    index index.html;\n  }\n}\n";
    files.push(File::regular("etc/nginx/nginx.conf", conf.to_vec(), 0o644));
    let mime = root.join("etc/nginx/mime.types");
    files.push(File::regular(
        "etc/nginx/mime.types",
        std::fs::read(&mime).map_err(io(&mime))?,
        0o644,
    ));
    files.push(File::regular(
        "usr/share/nginx/html/index.html",
        b"<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n<body>\n<h1>Welcome to nginx!</h1>\n<p>If you see this page, the nginx web server is successfully installed and\nworking.</p>\n</body>\n</html>\n".to_vec(),
        0o644,
    ));
    files.push(File::dir("var/lib/nginx", 0o755));
    files.push(File::dir("var/log/nginx", 0o755));
    files.push(File::dir("run", 0o755));
    Ok(ImageSpec {
        names: vec!["docker.io/library/nginx:latest".into()],
        files,
        cmd: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
        exposed_ports: vec!["80/tcp".into()],
        ..Default::default()
    })
}

/// `redis:latest` from Debian's redis-server package, listening on 6379 in the foreground.
pub fn redis_image(busybox: &Path, work: &Path) -> Result<ImageSpec> {
    debian_packages(&["redis-server", "redis-tools"], work)?;
    let root = work.join("root");
    let mut files = busybox_files(busybox)?;
    program_with_libraries(&root, "/usr/bin/redis-check-rdb", &mut files)?;
    files.push(File::symlink("usr/bin/redis-server", "redis-check-rdb"));
    files.push(File::symlink("usr/bin/redis-cli", "redis-check-rdb"));
    files.push(File::dir("data", 0o755));
    Ok(ImageSpec {
        names: vec!["docker.io/library/redis:latest".into()],
        files,
        cmd: vec![
            "redis-server".into(),
            "--protected-mode".into(),
            "no".into(),
            "--dir".into(),
            "/data".into(),
        ],
        working_dir: "/data".into(),
        exposed_ports: vec!["6379/tcp".into()],
        ..Default::default()
    })
}

/// Builds the test images into `out` (one `.tar` each) and returns their paths.
pub fn build_test_images(out: &Path, with_nginx: bool, with_redis: bool) -> Result<Vec<PathBuf>> {
    let busybox = Path::new(DEBIAN_BUSYBOX);
    if !busybox.exists() {
        return Err(Error::Format {
            path: busybox.to_path_buf(),
            message: "missing: install Debian's busybox-static package".into(),
        });
    }
    let mut written = Vec::new();
    let mut emit = |name: &str, spec: ImageSpec| -> Result<()> {
        let path = out.join(format!("{name}.tar"));
        write_oci_archive(&spec, &path)?;
        written.push(path);
        Ok(())
    };
    emit("busybox", busybox_image(busybox)?)?;
    emit("busybox-httpd", httpd_image(busybox)?)?;
    if with_nginx || with_redis {
        let work = tempfile_dir(out)?;
        if with_nginx {
            emit("nginx", nginx_image(busybox, &work.join("nginx"))?)?;
        }
        if with_redis {
            emit("redis", redis_image(busybox, &work.join("redis"))?)?;
        }
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(written)
}

fn tempfile_dir(near: &Path) -> Result<PathBuf> {
    let d = near.join(format!(".build-{}", std::process::id()));
    std::fs::create_dir_all(&d).map_err(io(&d))?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_files_always_give_the_same_layer() {
        let files = vec![
            File::regular("b/x", b"1".to_vec(), 0o644),
            File::regular("a", b"2".to_vec(), 0o755),
            File::symlink("b/y", "/a"),
        ];
        let one = layer(&files).unwrap();
        let two = layer(&files).unwrap();
        assert_eq!(sha256_hex(&one), sha256_hex(&two));
        let mut ar = tar::Archive::new(&one[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, vec!["a", "b/", "b/x", "b/y"]);
    }

    #[test]
    fn the_pause_image_is_one_static_program() {
        assert!(PAUSE_BINARY.starts_with(b"\x7fELF"));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("pause.tar");
        write_oci_archive(&pause_image(), &out).unwrap();
        assert_eq!(
            super::super::archive::image_names(&out).unwrap(),
            vec![PAUSE_IMAGE.to_string()]
        );
    }
}
