//! The API server as a tower service, for kube-rs clients inside the same process: the
//! scheduler, controllers and agent of `ferrokube server` use it with no sockets and no TLS,
//! as the loopback identity.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};

use crate::response::Body;
use crate::{ApiServer, UserInfo, handlers};

/// A `tower::Service` answering requests with [`handlers::handle`].
#[derive(Clone)]
pub struct InProcess {
    srv: Arc<ApiServer>,
    user: UserInfo,
}

impl InProcess {
    pub fn new(srv: Arc<ApiServer>) -> Self {
        InProcess {
            srv,
            user: UserInfo::loopback(),
        }
    }
}

impl<B> tower::Service<Request<B>> for InProcess
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let srv = self.srv.clone();
        let user = self.user.clone();
        Box::pin(async move { Ok(handlers::handle(srv, req, Some(user)).await) })
    }
}
