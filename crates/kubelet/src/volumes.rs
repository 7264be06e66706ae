//! Pod volumes under `<root>/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>`, as upstream lays
//! them out: emptyDir (on disk, or tmpfs for `medium: Memory`), hostPath with its type checks,
//! configMap, secret, downwardAPI and projected volumes written atomically (a timestamped
//! directory behind a `..data` symlink, so containers never see half an update), and
//! persistentVolumeClaims through their bound PersistentVolume (hostPath, local, NFS).
//!
//! Mounts go through [`Mounter`]; simulated nodes write nothing at all.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, Volume,
};

use crate::env::{Allocatable, PodFacts};
use crate::objects::Objects;

/// A volume ready to be mounted into containers.
#[derive(Clone, Debug, PartialEq)]
pub struct MountedVolume {
    pub host_path: PathBuf,
    /// Volumes of API data (configMap, secret, downwardAPI, projected) are always read-only.
    pub read_only: bool,
}

/// Why a volume could not be set up.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeError {
    pub volume: String,
    pub message: String,
}

impl std::fmt::Display for VolumeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MountVolume.SetUp failed for volume {:?} : {}",
            self.volume, self.message
        )
    }
}

/// Mounting and unmounting filesystems.
pub trait Mounter: Send + Sync {
    fn mount_tmpfs(&self, target: &Path, size_bytes: Option<i64>) -> std::io::Result<()>;
    fn mount_nfs(&self, source: &str, target: &Path, read_only: bool) -> std::io::Result<()>;
    fn unmount(&self, target: &Path) -> std::io::Result<()>;
    /// Mount points at or under `dir`, deepest first.
    fn mounts_under(&self, dir: &Path) -> Vec<PathBuf>;
}

/// The host's `mount` and `umount`.
#[derive(Debug, Default)]
pub struct SystemMounter;

fn run(cmd: &mut std::process::Command) -> std::io::Result<()> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

impl Mounter for SystemMounter {
    fn mount_tmpfs(&self, target: &Path, size_bytes: Option<i64>) -> std::io::Result<()> {
        let mut c = std::process::Command::new("mount");
        c.args(["-t", "tmpfs"]);
        if let Some(s) = size_bytes.filter(|s| *s > 0) {
            c.args(["-o", &format!("size={s}")]);
        }
        run(c.arg("tmpfs").arg(target))
    }

    fn mount_nfs(&self, source: &str, target: &Path, read_only: bool) -> std::io::Result<()> {
        let mut c = std::process::Command::new("mount");
        c.args(["-t", "nfs"]);
        if read_only {
            c.args(["-o", "ro"]);
        }
        run(c.arg(source).arg(target))
    }

    fn unmount(&self, target: &Path) -> std::io::Result<()> {
        run(std::process::Command::new("umount").arg(target))
    }

    fn mounts_under(&self, dir: &Path) -> Vec<PathBuf> {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut v: Vec<PathBuf> = text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .map(|p| PathBuf::from(p.replace("\\040", " ")))
            .filter(|p| p.starts_with(dir))
            .collect();
        v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        v.dedup();
        v
    }
}

/// Records mounts instead of making them (tests).
#[derive(Debug, Default)]
pub struct FakeMounter {
    pub mounts: parking_lot::Mutex<Vec<(String, PathBuf)>>,
}

impl Mounter for FakeMounter {
    fn mount_tmpfs(&self, target: &Path, _: Option<i64>) -> std::io::Result<()> {
        self.mounts
            .lock()
            .push(("tmpfs".into(), target.to_path_buf()));
        Ok(())
    }
    fn mount_nfs(&self, source: &str, target: &Path, _: bool) -> std::io::Result<()> {
        self.mounts
            .lock()
            .push((format!("nfs {source}"), target.to_path_buf()));
        Ok(())
    }
    fn unmount(&self, target: &Path) -> std::io::Result<()> {
        self.mounts.lock().retain(|(_, t)| t != target);
        Ok(())
    }
    fn mounts_under(&self, dir: &Path) -> Vec<PathBuf> {
        self.mounts
            .lock()
            .iter()
            .filter(|(_, t)| t.starts_with(dir))
            .map(|(_, t)| t.clone())
            .collect()
    }
}

/// Sets volumes up and tears them down.
pub struct VolumeManager {
    pods_dir: PathBuf,
    objects: Arc<dyn Objects>,
    mounter: Arc<dyn Mounter>,
    write_files: bool,
}

fn vol_err(volume: &str, message: impl Into<String>) -> VolumeError {
    VolumeError {
        volume: volume.to_string(),
        message: message.into(),
    }
}

impl VolumeManager {
    pub fn new(
        pods_dir: PathBuf,
        objects: Arc<dyn Objects>,
        mounter: Arc<dyn Mounter>,
        write_files: bool,
    ) -> Self {
        VolumeManager {
            pods_dir,
            objects,
            mounter,
            write_files,
        }
    }

    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.pods_dir.join(uid)
    }

    fn plugin_dir(&self, uid: &str, plugin: &str, name: &str) -> PathBuf {
        self.pod_dir(uid)
            .join("volumes")
            .join(format!("kubernetes.io~{plugin}"))
            .join(name)
    }

    /// Sets up every volume of the pod (again: API data volumes are refreshed on each call).
    pub async fn setup(
        &self,
        pod: &Pod,
        node: &Allocatable,
        facts: &PodFacts,
    ) -> Result<HashMap<String, MountedVolume>, VolumeError> {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let mut out = HashMap::new();
        for v in pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .into_iter()
            .flatten()
        {
            let mounted = self.setup_one(pod, uid, v, node, facts).await?;
            out.insert(v.name.clone(), mounted);
        }
        Ok(out)
    }

    async fn setup_one(
        &self,
        pod: &Pod,
        uid: &str,
        v: &Volume,
        node: &Allocatable,
        facts: &PodFacts,
    ) -> Result<MountedVolume, VolumeError> {
        let name = v.name.as_str();
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let io = |e: std::io::Error| vol_err(name, e.to_string());
        if let Some(hp) = &v.host_path {
            let path = PathBuf::from(&hp.path);
            if self.write_files {
                check_host_path(&path, hp.type_.as_deref().unwrap_or(""))
                    .map_err(|m| vol_err(name, m))?;
            }
            return Ok(MountedVolume {
                host_path: path,
                read_only: false,
            });
        }
        if let Some(ed) = &v.empty_dir {
            let dir = self.plugin_dir(uid, "empty-dir", name);
            if self.write_files {
                std::fs::create_dir_all(&dir).map_err(io)?;
                set_mode(&dir, 0o777).map_err(io)?;
                if ed.medium.as_deref() == Some("Memory")
                    && self.mounter.mounts_under(&dir).is_empty()
                {
                    let size = ed
                        .size_limit
                        .as_ref()
                        .and_then(|q| ferrokube_api::quantity::Quantity::parse(&q.0).ok())
                        .map(|q| q.value());
                    self.mounter.mount_tmpfs(&dir, size).map_err(io)?;
                    set_mode(&dir, 0o777).map_err(io)?;
                }
            }
            return Ok(MountedVolume {
                host_path: dir,
                read_only: false,
            });
        }
        if let Some(cm) = &v.config_map {
            let dir = self.plugin_dir(uid, "configmap", name);
            let optional = cm.optional.unwrap_or(false);
            let payload = match self
                .objects
                .config_map(ns, &cm.name)
                .await
                .map_err(|e| vol_err(name, e))?
            {
                Some(obj) => {
                    config_map_payload(&obj, cm.items.as_deref(), cm.default_mode, optional)
                        .map_err(|m| vol_err(name, m))?
                }
                None if optional => BTreeMap::new(),
                None => return Err(vol_err(name, format!("configmap {:?} not found", cm.name))),
            };
            self.write_payload(&dir, payload).map_err(io)?;
            return Ok(MountedVolume {
                host_path: dir,
                read_only: true,
            });
        }
        if let Some(s) = &v.secret {
            let dir = self.plugin_dir(uid, "secret", name);
            let secret_name = s.secret_name.clone().unwrap_or_default();
            let optional = s.optional.unwrap_or(false);
            let payload = match self
                .objects
                .secret(ns, &secret_name)
                .await
                .map_err(|e| vol_err(name, e))?
            {
                Some(obj) => secret_payload(&obj, s.items.as_deref(), s.default_mode, optional)
                    .map_err(|m| vol_err(name, m))?,
                None if optional => BTreeMap::new(),
                None => return Err(vol_err(name, format!("secret {secret_name:?} not found"))),
            };
            self.write_payload(&dir, payload).map_err(io)?;
            return Ok(MountedVolume {
                host_path: dir,
                read_only: true,
            });
        }
        if let Some(d) = &v.downward_api {
            let dir = self.plugin_dir(uid, "downward-api", name);
            let payload = downward_payload(
                pod,
                d.items.as_deref().unwrap_or(&[]),
                d.default_mode,
                node,
                facts,
            )
            .map_err(|m| vol_err(name, m))?;
            self.write_payload(&dir, payload).map_err(io)?;
            return Ok(MountedVolume {
                host_path: dir,
                read_only: true,
            });
        }
        if let Some(p) = &v.projected {
            let dir = self.plugin_dir(uid, "projected", name);
            let payload = self
                .projected_payload(pod, p, node, facts)
                .await
                .map_err(|m| vol_err(name, m))?;
            self.write_payload(&dir, payload).map_err(io)?;
            return Ok(MountedVolume {
                host_path: dir,
                read_only: true,
            });
        }
        if let Some(claim) = &v.persistent_volume_claim {
            return self
                .claim_volume(
                    uid,
                    ns,
                    name,
                    &claim.claim_name,
                    claim.read_only.unwrap_or(false),
                )
                .await;
        }
        if let Some(nfs) = &v.nfs {
            let dir = self.plugin_dir(uid, "nfs", name);
            self.mount_nfs_at(&dir, &nfs.server, &nfs.path, nfs.read_only.unwrap_or(false))
                .map_err(|e| vol_err(name, e))?;
            return Ok(MountedVolume {
                host_path: dir,
                read_only: nfs.read_only.unwrap_or(false),
            });
        }
        Err(vol_err(
            name,
            "this volume type is not supported by ferrokube's kubelet",
        ))
    }

    fn mount_nfs_at(&self, dir: &Path, server: &str, path: &str, ro: bool) -> Result<(), String> {
        if !self.write_files {
            return Ok(());
        }
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        if !self.mounter.mounts_under(dir).is_empty() {
            return Ok(());
        }
        // This host's kernel has no NFS client: the mount fails with the kernel's words.
        self.mounter
            .mount_nfs(&format!("{server}:{path}"), dir, ro)
            .map_err(|e| format!("mount failed: {e}\nMounting command: mount\nMounting arguments: -t nfs {server}:{path} {}", dir.display()))
    }

    async fn claim_volume(
        &self,
        uid: &str,
        ns: &str,
        name: &str,
        claim_name: &str,
        read_only: bool,
    ) -> Result<MountedVolume, VolumeError> {
        let claim = self
            .objects
            .claim(ns, claim_name)
            .await
            .map_err(|e| vol_err(name, e))?
            .ok_or_else(|| {
                vol_err(
                    name,
                    format!("persistentvolumeclaim {claim_name:?} not found"),
                )
            })?;
        let pv_name = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| vol_err(name, format!("PVC {ns}/{claim_name} is not bound")))?;
        let pv = self
            .objects
            .volume(&pv_name)
            .await
            .map_err(|e| vol_err(name, e))?
            .ok_or_else(|| vol_err(name, format!("persistentvolume {pv_name:?} not found")))?;
        let spec = pv.spec.unwrap_or_default();
        if let Some(hp) = spec.host_path {
            let path = PathBuf::from(&hp.path);
            if self.write_files {
                let ty = hp.type_.as_deref().unwrap_or("");
                // Provisioned hostPath volumes may not exist yet on this node: create them.
                let ty = if ty.is_empty() {
                    "DirectoryOrCreate"
                } else {
                    ty
                };
                check_host_path(&path, ty).map_err(|m| vol_err(name, m))?;
            }
            return Ok(MountedVolume {
                host_path: path,
                read_only,
            });
        }
        if let Some(local) = spec.local {
            let path = PathBuf::from(&local.path);
            if self.write_files && !path.exists() {
                return Err(vol_err(
                    name,
                    format!("path {:?} does not exist", local.path),
                ));
            }
            return Ok(MountedVolume {
                host_path: path,
                read_only,
            });
        }
        if let Some(nfs) = spec.nfs {
            let dir = self.plugin_dir(uid, "nfs", name);
            let ro = read_only || nfs.read_only.unwrap_or(false);
            self.mount_nfs_at(&dir, &nfs.server, &nfs.path, ro)
                .map_err(|e| vol_err(name, e))?;
            return Ok(MountedVolume {
                host_path: dir,
                read_only: ro,
            });
        }
        Err(vol_err(
            name,
            format!(
                "persistentvolume {pv_name:?}: only hostPath, local and nfs volumes are supported"
            ),
        ))
    }

    async fn projected_payload(
        &self,
        pod: &Pod,
        p: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
        node: &Allocatable,
        facts: &PodFacts,
    ) -> Result<BTreeMap<String, (Vec<u8>, u32)>, String> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let mode = p.default_mode;
        let mut payload = BTreeMap::new();
        for src in p.sources.iter().flatten() {
            if let Some(cm) = &src.config_map {
                let optional = cm.optional.unwrap_or(false);
                match self.objects.config_map(ns, &cm.name).await? {
                    Some(obj) => payload.extend(config_map_payload(
                        &obj,
                        cm.items.as_deref(),
                        mode,
                        optional,
                    )?),
                    None if optional => {}
                    None => return Err(format!("configmap {:?} not found", cm.name)),
                }
            }
            if let Some(s) = &src.secret {
                let optional = s.optional.unwrap_or(false);
                match self.objects.secret(ns, &s.name).await? {
                    Some(obj) => {
                        payload.extend(secret_payload(&obj, s.items.as_deref(), mode, optional)?)
                    }
                    None if optional => {}
                    None => return Err(format!("secret {:?} not found", s.name)),
                }
            }
            if let Some(d) = &src.downward_api {
                payload.extend(downward_payload(
                    pod,
                    d.items.as_deref().unwrap_or(&[]),
                    mode,
                    node,
                    facts,
                )?);
            }
            if let Some(t) = &src.service_account_token {
                let sa = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.service_account_name.clone())
                    .unwrap_or_else(|| "default".into());
                let token = self
                    .objects
                    .service_account_token(
                        ns,
                        &sa,
                        t.audience.clone(),
                        t.expiration_seconds.unwrap_or(3600),
                        (
                            pod.metadata.name.as_deref().unwrap_or(""),
                            pod.metadata.uid.as_deref().unwrap_or(""),
                        ),
                    )
                    .await
                    .map_err(|e| format!("failed to fetch token: {e}"))?;
                payload.insert(t.path.clone(), (token.into_bytes(), file_mode(mode, None)));
            }
            if src.cluster_trust_bundle.is_some() {
                return Err("clusterTrustBundle projections are not supported".into());
            }
        }
        Ok(payload)
    }

    fn write_payload(
        &self,
        dir: &Path,
        payload: BTreeMap<String, (Vec<u8>, u32)>,
    ) -> std::io::Result<()> {
        if !self.write_files {
            return Ok(());
        }
        write_atomic(dir, &payload).map(|_| ())
    }

    /// Unmounts and removes everything the pod had on this node. Idempotent.
    pub fn teardown(&self, uid: &str) {
        if !self.write_files {
            return;
        }
        let dir = self.pod_dir(uid);
        for m in self.mounter.mounts_under(&dir) {
            if let Err(e) = self.mounter.unmount(&m) {
                tracing::warn!(path = %m.display(), error = %e, "could not unmount a pod volume");
            }
        }
        if !self.mounter.mounts_under(&dir).is_empty() {
            // Never delete through a mount: that would delete the volume's data.
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %dir.display(), error = %e, "could not remove a pod directory");
        }
    }
}

fn set_mode(p: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
}

/// Upstream's hostPath type checks.
fn check_host_path(path: &Path, ty: &str) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let p = path.display();
    let meta = std::fs::metadata(path);
    let fail = |what: &str| Err(format!("hostPath type check failed: {p} is not a {what}"));
    match ty {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            if meta.is_err() {
                std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
                set_mode(path, 0o755).map_err(|e| e.to_string())?;
                return Ok(());
            }
            if meta.is_ok_and(|m| m.is_dir()) {
                Ok(())
            } else {
                fail("directory")
            }
        }
        "Directory" => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => fail("directory"),
            Err(_) => Err(format!(
                "hostPath type check failed: {p} is not a directory"
            )),
        },
        "FileOrCreate" => {
            if meta.is_err() {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                }
                std::fs::File::create(path).map_err(|e| e.to_string())?;
                set_mode(path, 0o644).map_err(|e| e.to_string())?;
                return Ok(());
            }
            if meta.is_ok_and(|m| m.is_file()) {
                Ok(())
            } else {
                fail("file")
            }
        }
        "File" => match meta {
            Ok(m) if m.is_file() => Ok(()),
            _ => fail("file"),
        },
        "Socket" => match meta {
            Ok(m) if m.file_type().is_socket() => Ok(()),
            _ => fail("socket file"),
        },
        "CharDevice" => match meta {
            Ok(m) if m.file_type().is_char_device() => Ok(()),
            _ => fail("character device"),
        },
        "BlockDevice" => match meta {
            Ok(m) if m.file_type().is_block_device() => Ok(()),
            _ => fail("block device"),
        },
        other => Err(format!("invalid HostPathType {other:?}")),
    }
}

fn file_mode(default_mode: Option<i32>, item_mode: Option<i32>) -> u32 {
    item_mode.or(default_mode).unwrap_or(0o644) as u32
}

/// Keys (or the chosen items) of a data map as files.
fn project(
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
    optional: bool,
    what: &str,
) -> Result<BTreeMap<String, (Vec<u8>, u32)>, String> {
    let mut out = BTreeMap::new();
    match items {
        None | Some([]) => {
            for (k, v) in data {
                out.insert(k, (v, file_mode(default_mode, None)));
            }
        }
        Some(items) => {
            for i in items {
                match data.get(&i.key) {
                    Some(v) => {
                        out.insert(i.path.clone(), (v.clone(), file_mode(default_mode, i.mode)));
                    }
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "configuration of {what} references non-existent key {:?}",
                            i.key
                        ));
                    }
                }
            }
        }
    }
    Ok(out)
}

fn config_map_payload(
    cm: &ConfigMap,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
    optional: bool,
) -> Result<BTreeMap<String, (Vec<u8>, u32)>, String> {
    let mut data: BTreeMap<String, Vec<u8>> = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.iter().flatten() {
        data.insert(k.clone(), v.0.clone());
    }
    let name = format!(
        "configMap {}/{}",
        cm.metadata.namespace.as_deref().unwrap_or(""),
        cm.metadata.name.as_deref().unwrap_or("")
    );
    project(data, items, default_mode, optional, &name)
}

fn secret_payload(
    s: &Secret,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
    optional: bool,
) -> Result<BTreeMap<String, (Vec<u8>, u32)>, String> {
    let mut data: BTreeMap<String, Vec<u8>> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in s.string_data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    let name = format!(
        "secret {}/{}",
        s.metadata.namespace.as_deref().unwrap_or(""),
        s.metadata.name.as_deref().unwrap_or("")
    );
    project(data, items, default_mode, optional, &name)
}

fn downward_payload(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: Option<i32>,
    node: &Allocatable,
    facts: &PodFacts,
) -> Result<BTreeMap<String, (Vec<u8>, u32)>, String> {
    let mut out = BTreeMap::new();
    for i in items {
        let value = if let Some(f) = &i.field_ref {
            crate::env::field_value(pod, &f.field_path, facts)?
        } else if let Some(r) = &i.resource_field_ref {
            let name = r.container_name.clone().unwrap_or_default();
            let c = pod
                .spec
                .as_ref()
                .and_then(|s| s.containers.iter().find(|c| c.name == name))
                .ok_or_else(|| format!("container {name} not found"))?;
            crate::env::resource_value(
                pod,
                c,
                None,
                &r.resource,
                r.divisor.as_ref().map(|d| d.0.as_str()),
                node,
            )?
        } else {
            String::new()
        };
        out.insert(
            i.path.clone(),
            (value.into_bytes(), file_mode(default_mode, i.mode)),
        );
    }
    Ok(out)
}

/// Writes `payload` under `dir` so that readers see either the old or the new content: files go
/// into a fresh timestamped directory, `..data` is switched to it with a rename, and each
/// top-level name is a symlink through `..data`. Returns whether anything changed.
pub fn write_atomic(
    dir: &Path,
    payload: &BTreeMap<String, (Vec<u8>, u32)>,
) -> std::io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    let data_link = dir.join("..data");
    let current = std::fs::read_link(&data_link).ok();
    if let Some(cur) = &current {
        let cur_dir = dir.join(cur);
        let same = payload.iter().all(|(k, (v, mode))| {
            use std::os::unix::fs::PermissionsExt;
            let p = cur_dir.join(k);
            std::fs::read(&p).is_ok_and(|d| &d == v)
                && std::fs::metadata(&p).is_ok_and(|m| m.permissions().mode() & 0o7777 == *mode)
        }) && count_files(&cur_dir) == payload.len();
        if same {
            return Ok(false);
        }
    }
    let ts = crate::clock::now()
        .strftime("..%Y_%m_%d_%H_%M_%S.%f")
        .to_string();
    let ts_dir = dir.join(&ts);
    std::fs::create_dir_all(&ts_dir)?;
    for (k, (v, mode)) in payload {
        let p = ts_dir.join(k);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, v)?;
        set_mode(&p, *mode)?;
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&ts, &tmp)?;
    std::fs::rename(&tmp, &data_link)?;
    let top: std::collections::BTreeSet<String> = payload
        .keys()
        .map(|k| k.split('/').next().unwrap_or(k).to_string())
        .collect();
    for t in &top {
        let link = dir.join(t);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{t}"), &link)?;
        }
    }
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("..") {
            if name != "..data" && name != ts && e.path().is_dir() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        } else if !top.contains(&name) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(true)
}

fn count_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            if e.path().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(pairs: &[(&str, &str)]) -> BTreeMap<String, (Vec<u8>, u32)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), (v.as_bytes().to_vec(), 0o644)))
            .collect()
    }

    #[test]
    fn atomic_writes_switch_whole_contents_and_drop_removed_keys() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("cm");
        assert!(write_atomic(&d, &payload(&[("a", "1"), ("sub/b", "2")])).unwrap());
        assert_eq!(std::fs::read_to_string(d.join("a")).unwrap(), "1");
        assert_eq!(std::fs::read_to_string(d.join("sub/b")).unwrap(), "2");
        assert!(
            std::fs::symlink_metadata(d.join("a"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(
            !write_atomic(&d, &payload(&[("a", "1"), ("sub/b", "2")])).unwrap(),
            "unchanged"
        );
        assert!(write_atomic(&d, &payload(&[("a", "3")])).unwrap());
        assert_eq!(std::fs::read_to_string(d.join("a")).unwrap(), "3");
        assert!(!d.join("sub").exists());
        let stamped: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                n.starts_with("..") && n != "..data"
            })
            .collect();
        assert_eq!(stamped.len(), 1, "the old generation is gone");
    }

    #[test]
    fn host_path_types_are_checked_as_upstream() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("file");
        std::fs::write(&f, "x").unwrap();
        assert_eq!(
            check_host_path(&f, "Directory").unwrap_err(),
            format!(
                "hostPath type check failed: {} is not a directory",
                f.display()
            )
        );
        assert!(check_host_path(&f, "File").is_ok());
        let created = dir.path().join("new/dir");
        check_host_path(&created, "DirectoryOrCreate").unwrap();
        assert!(created.is_dir());
        let file = dir.path().join("new/f");
        check_host_path(&file, "FileOrCreate").unwrap();
        assert!(file.is_file());
        assert!(
            check_host_path(&f, "Socket")
                .unwrap_err()
                .ends_with("is not a socket file")
        );
    }

    #[test]
    fn items_choose_keys_paths_and_modes() {
        let data = BTreeMap::from([
            ("k1".to_string(), b"v1".to_vec()),
            ("k2".into(), b"v2".to_vec()),
        ]);
        let items = vec![KeyToPath {
            key: "k2".into(),
            path: "conf/two".into(),
            mode: Some(0o600),
        }];
        let p = project(data.clone(), Some(&items), Some(0o644), false, "x").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p["conf/two"], (b"v2".to_vec(), 0o600));
        let bad = vec![KeyToPath {
            key: "nope".into(),
            path: "p".into(),
            mode: None,
        }];
        assert!(
            project(data, Some(&bad), None, false, "configMap ns/c")
                .unwrap_err()
                .contains("non-existent key \"nope\"")
        );
    }
}
