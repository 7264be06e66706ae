//! The CRI v1 client: RuntimeService and ImageService over gRPC on the runtime's unix socket
//! (containerd's `io.containerd.grpc.v1.cri` plugin). Exec, attach and port-forward get a URL
//! from the runtime and are carried over its streaming server with SPDY ([`crate::server::spdy`]).
//! Image import, which CRI lacks, goes through containerd's own `ctr`.

use std::path::Path;
use std::time::Duration;

use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::io::DuplexStream;
use tonic::transport::{Channel, Endpoint};

use super::api;
use super::{Error, Result, Runtime, StreamIo, StreamOutcome};

/// Messages can be large (a node's full container list): allow 16 MiB.
const MAX_MESSAGE: usize = 16 << 20;

#[derive(Clone)]
pub struct RemoteRuntime {
    endpoint: String,
    socket: String,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

impl std::fmt::Debug for RemoteRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteRuntime")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

fn rpc(op: &'static str) -> impl FnOnce(tonic::Status) -> Error {
    move |s| Error::Rpc {
        op,
        code: s.code(),
        message: s.message().to_string(),
    }
}

impl RemoteRuntime {
    /// Connects to `unix:///path/to/socket` (a bare path works too).
    pub async fn connect(endpoint: &str) -> Result<Self> {
        let socket = endpoint
            .strip_prefix("unix://")
            .unwrap_or(endpoint)
            .to_string();
        let uri = format!("unix://{socket}");
        let channel = Endpoint::from_shared(uri)
            .map_err(|e| Error::Connect {
                endpoint: endpoint.to_string(),
                message: e.to_string(),
            })?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| Error::Connect {
                endpoint: endpoint.to_string(),
                message: format!(
                    "{e}: {}",
                    std::error::Error::source(&e)
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                ),
            })?;
        Ok(RemoteRuntime {
            endpoint: endpoint.to_string(),
            socket,
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            images: ImageServiceClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        })
    }

    /// Connects, retrying until the socket answers or `timeout` passes.
    pub async fn connect_retrying(endpoint: &str, timeout: Duration) -> Result<Self> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match Self::connect(endpoint).await {
                Ok(r) => match r.version().await {
                    Ok(_) => return Ok(r),
                    Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                    Err(_) => {}
                },
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn socket(&self) -> &str {
        &self.socket
    }

    async fn stream_url(&self, url: &str) -> Result<url_parts::Target> {
        url_parts::parse(url).map_err(Error::Stream)
    }
}

/// Splitting the runtime's streaming URLs (`http://127.0.0.1:PORT/exec/TOKEN`).
pub(crate) mod url_parts {
    #[derive(Debug, PartialEq, Eq)]
    pub struct Target {
        pub addr: String,
        pub path: String,
    }

    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("unsupported streaming URL {url:?}"))?;
        let (addr, path) = rest.split_once('/').unwrap_or((rest, ""));
        Ok(Target {
            addr: addr.to_string(),
            path: format!("/{path}"),
        })
    }
}

#[async_trait::async_trait]
impl Runtime for RemoteRuntime {
    async fn version(&self) -> Result<api::VersionResponse> {
        Ok(self
            .runtime
            .clone()
            .version(api::VersionRequest {
                version: "v1".into(),
            })
            .await
            .map_err(rpc("Version"))?
            .into_inner())
    }

    async fn status(&self) -> Result<api::RuntimeStatus> {
        Ok(self
            .runtime
            .clone()
            .status(api::StatusRequest { verbose: false })
            .await
            .map_err(rpc("Status"))?
            .into_inner()
            .status
            .unwrap_or_default())
    }

    async fn update_runtime_config(&self, pod_cidr: &str) -> Result<()> {
        self.runtime
            .clone()
            .update_runtime_config(api::UpdateRuntimeConfigRequest {
                runtime_config: Some(api::RuntimeConfig {
                    network_config: Some(api::NetworkConfig {
                        pod_cidr: pod_cidr.to_string(),
                    }),
                }),
            })
            .await
            .map_err(rpc("UpdateRuntimeConfig"))?;
        Ok(())
    }

    async fn run_pod_sandbox(
        &self,
        config: api::PodSandboxConfig,
        runtime_handler: &str,
    ) -> Result<String> {
        Ok(self
            .runtime
            .clone()
            .run_pod_sandbox(api::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: runtime_handler.to_string(),
            })
            .await
            .map_err(rpc("RunPodSandbox"))?
            .into_inner()
            .pod_sandbox_id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        match self
            .runtime
            .clone()
            .stop_pod_sandbox(api::StopPodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(rpc("StopPodSandbox")(s)),
        }
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        match self
            .runtime
            .clone()
            .remove_pod_sandbox(api::RemovePodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(rpc("RemovePodSandbox")(s)),
        }
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<api::PodSandboxStatus> {
        self.runtime
            .clone()
            .pod_sandbox_status(api::PodSandboxStatusRequest {
                pod_sandbox_id: id.to_string(),
                verbose: false,
            })
            .await
            .map_err(rpc("PodSandboxStatus"))?
            .into_inner()
            .status
            .ok_or_else(|| Error::NotFound {
                what: "sandbox",
                id: id.to_string(),
            })
    }

    async fn list_pod_sandbox(
        &self,
        filter: Option<api::PodSandboxFilter>,
    ) -> Result<Vec<api::PodSandbox>> {
        Ok(self
            .runtime
            .clone()
            .list_pod_sandbox(api::ListPodSandboxRequest { filter })
            .await
            .map_err(rpc("ListPodSandbox"))?
            .into_inner()
            .items)
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> Result<String> {
        Ok(self
            .runtime
            .clone()
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: sandbox_id.to_string(),
                config: Some(config),
                sandbox_config: Some(sandbox_config),
            })
            .await
            .map_err(rpc("CreateContainer"))?
            .into_inner()
            .container_id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.runtime
            .clone()
            .start_container(api::StartContainerRequest {
                container_id: id.to_string(),
            })
            .await
            .map_err(rpc("StartContainer"))?;
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout: i64) -> Result<()> {
        let mut req = tonic::Request::new(api::StopContainerRequest {
            container_id: id.to_string(),
            timeout,
        });
        // The call lasts as long as the grace period, and then some.
        req.set_timeout(Duration::from_secs(timeout.max(0) as u64 + 30));
        match self.runtime.clone().stop_container(req).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(rpc("StopContainer")(s)),
        }
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        match self
            .runtime
            .clone()
            .remove_container(api::RemoveContainerRequest {
                container_id: id.to_string(),
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(rpc("RemoveContainer")(s)),
        }
    }

    async fn list_containers(
        &self,
        filter: Option<api::ContainerFilter>,
    ) -> Result<Vec<api::Container>> {
        Ok(self
            .runtime
            .clone()
            .list_containers(api::ListContainersRequest { filter })
            .await
            .map_err(rpc("ListContainers"))?
            .into_inner()
            .containers)
    }

    async fn container_status(&self, id: &str) -> Result<api::ContainerStatus> {
        self.runtime
            .clone()
            .container_status(api::ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            })
            .await
            .map_err(rpc("ContainerStatus"))?
            .into_inner()
            .status
            .ok_or_else(|| Error::NotFound {
                what: "container",
                id: id.to_string(),
            })
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<api::ExecSyncResponse> {
        let mut req = tonic::Request::new(api::ExecSyncRequest {
            container_id: id.to_string(),
            cmd,
            timeout: timeout.as_secs() as i64,
        });
        req.set_timeout(timeout + Duration::from_secs(2));
        Ok(self
            .runtime
            .clone()
            .exec_sync(req)
            .await
            .map_err(rpc("ExecSync"))?
            .into_inner())
    }

    async fn exec(&self, req: api::ExecRequest, io: StreamIo) -> Result<StreamOutcome> {
        let url = self
            .runtime
            .clone()
            .exec(req.clone())
            .await
            .map_err(rpc("Exec"))?
            .into_inner()
            .url;
        let target = self.stream_url(&url).await?;
        crate::server::spdy_client::remote_command(&target.addr, &target.path, req.tty, io).await
    }

    async fn attach(&self, req: api::AttachRequest, io: StreamIo) -> Result<StreamOutcome> {
        let url = self
            .runtime
            .clone()
            .attach(req.clone())
            .await
            .map_err(rpc("Attach"))?
            .into_inner()
            .url;
        let target = self.stream_url(&url).await?;
        crate::server::spdy_client::remote_command(&target.addr, &target.path, req.tty, io).await
    }

    async fn port_forward(&self, sandbox_id: &str, port: u16, conn: DuplexStream) -> Result<()> {
        let url = self
            .runtime
            .clone()
            .port_forward(api::PortForwardRequest {
                pod_sandbox_id: sandbox_id.to_string(),
                port: vec![port as i32],
            })
            .await
            .map_err(rpc("PortForward"))?
            .into_inner()
            .url;
        let target = self.stream_url(&url).await?;
        crate::server::spdy_client::port_forward(&target.addr, &target.path, port, conn).await
    }

    async fn list_container_stats(&self) -> Result<Vec<api::ContainerStats>> {
        Ok(self
            .runtime
            .clone()
            .list_container_stats(api::ListContainerStatsRequest { filter: None })
            .await
            .map_err(rpc("ListContainerStats"))?
            .into_inner()
            .stats)
    }

    async fn list_pod_sandbox_stats(&self) -> Result<Vec<api::PodSandboxStats>> {
        Ok(self
            .runtime
            .clone()
            .list_pod_sandbox_stats(api::ListPodSandboxStatsRequest { filter: None })
            .await
            .map_err(rpc("ListPodSandboxStats"))?
            .into_inner()
            .stats)
    }

    async fn list_images(&self) -> Result<Vec<api::Image>> {
        Ok(self
            .images
            .clone()
            .list_images(api::ListImagesRequest { filter: None })
            .await
            .map_err(rpc("ListImages"))?
            .into_inner()
            .images)
    }

    async fn image_status(&self, image: &str) -> Result<Option<api::Image>> {
        Ok(self
            .images
            .clone()
            .image_status(api::ImageStatusRequest {
                image: Some(api::ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await
            .map_err(rpc("ImageStatus"))?
            .into_inner()
            .image)
    }

    async fn pull_image(
        &self,
        image: &str,
        auth: Option<api::AuthConfig>,
        sandbox_config: Option<api::PodSandboxConfig>,
    ) -> Result<String> {
        Ok(self
            .images
            .clone()
            .pull_image(api::PullImageRequest {
                image: Some(api::ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
                auth,
                sandbox_config,
            })
            .await
            .map_err(rpc("PullImage"))?
            .into_inner()
            .image_ref)
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        self.images
            .clone()
            .remove_image(api::RemoveImageRequest {
                image: Some(api::ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
            })
            .await
            .map_err(rpc("RemoveImage"))?;
        Ok(())
    }

    async fn image_fs_info(&self) -> Result<Vec<api::FilesystemUsage>> {
        Ok(self
            .images
            .clone()
            .image_fs_info(api::ImageFsInfoRequest {})
            .await
            .map_err(rpc("ImageFsInfo"))?
            .into_inner()
            .image_filesystems)
    }

    async fn import_images(&self, archive: &Path) -> Result<Vec<String>> {
        import_with_ctr(&self.socket, archive).await
    }
}

/// Imports an archive (or OCI layout directory) into containerd's `k8s.io` namespace with
/// `ctr`, which ships with containerd.
pub async fn import_with_ctr(socket: &str, archive: &Path) -> Result<Vec<String>> {
    let names =
        crate::images::archive::image_names(archive).map_err(|e| Error::Failed(e.to_string()))?;
    let mut packed = None;
    let file = if archive.is_dir() {
        let tmp =
            std::env::temp_dir().join(format!("ferrokube-import-{}.tar", uuid::Uuid::new_v4()));
        crate::images::archive::pack_layout(archive, &tmp)
            .map_err(|e| Error::Failed(e.to_string()))?;
        packed = Some(tmp.clone());
        tmp
    } else {
        archive.to_path_buf()
    };
    let out = tokio::process::Command::new("ctr")
        .args([
            "--address",
            socket,
            "--namespace",
            "k8s.io",
            "images",
            "import",
            "--digests",
        ])
        .arg(&file)
        .output()
        .await;
    if let Some(p) = packed {
        let _ = std::fs::remove_file(p);
    }
    let out = out.map_err(|e| {
        Error::Failed(format!(
            "running ctr to import {}: {e} (ctr comes with Debian's containerd package)",
            archive.display()
        ))
    })?;
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "ctr images import {}: {}",
            archive.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_urls_split_into_address_and_path() {
        assert_eq!(
            url_parts::parse("http://127.0.0.1:34567/exec/AbCd").unwrap(),
            url_parts::Target {
                addr: "127.0.0.1:34567".into(),
                path: "/exec/AbCd".into()
            }
        );
        assert!(url_parts::parse("https://x/").is_err());
    }
}
