//! Services in the caller's process: requests go straight to the registered handler, through
//! the same encoding and decoding as on a chain.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;

use super::client::{Invoker, RawRequest, ServiceTarget};
use super::context::InvocationContext;
use super::dispatch::ServiceDispatch;
use super::error::{AddServiceError, InvokeError, TransportError};
use crate::chain::ChainKey;
use crate::crypto::Hash;
use crate::event::codec::MAX_TYPE_NAME;
use crate::schema::is_reserved;
use crate::session::AteSession;

/// Services of this process, called directly: a client made on it
/// (`BankClient::new(&services, &session)`) reaches the handler registered for its request's
/// type without a chain, through the same encoding, checks and error mapping as a chain
/// transport.
///
/// The handler's [`InvocationContext`] names the caller by the public-key ids of its session's
/// signing keys (the session holds them, so the caller has them), and the chain given to
/// [`LocalServices::on_chain`], if any. Each request runs on a task of its own, so a caller
/// that stops waiting (a timeout, a dropped future) never cuts a handler off half-way.
///
/// Cloning is cheap: clones share the services.
///
/// ```
/// use ate_runtime::service::{LocalServices, ServiceClient};
/// use ate_runtime::AteSession;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let services = LocalServices::new();
/// // services.add_service(BankService::new(MyBank::default()))?;  (see `#[service]`)
/// let client = ServiceClient::connect(&services, &AteSession::default());
/// let nobody = client.call_raw("bank.Deposit", &[0xc0]).await;
/// assert!(matches!(nobody, Err(ate_runtime::service::InvokeError::NoService { .. })));
/// # }
/// ```
#[derive(Clone, Default)]
pub struct LocalServices {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    chain: Option<ChainKey>,
    /// Request type name -> the service answering it.
    services: RwLock<HashMap<String, Arc<dyn ServiceDispatch>>>,
}

impl fmt::Debug for LocalServices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalServices")
            .field("chain", &self.inner.chain)
            .field("request_types", &self.request_types())
            .finish()
    }
}

impl LocalServices {
    /// No services yet; handlers see no chain in their context.
    pub fn new() -> Self {
        LocalServices::default()
    }

    /// No services yet; handlers see `chain` as the chain of every request.
    pub fn on_chain(chain: ChainKey) -> Self {
        LocalServices {
            inner: Arc::new(Inner {
                chain: Some(chain),
                services: RwLock::default(),
            }),
        }
    }

    /// Serves every request type of `service` from now on.
    ///
    /// # Errors
    ///
    /// [`AddServiceError::AlreadyServed`] when a type is served already (or named twice by
    /// `service`), [`AddServiceError::InvalidName`] for a name no request type can have; then
    /// nothing is added.
    pub fn add_service<S: ServiceDispatch + 'static>(
        &self,
        service: S,
    ) -> Result<(), AddServiceError> {
        self.add_shared(Arc::new(service))
    }

    /// [`LocalServices::add_service`] for a service held elsewhere too.
    ///
    /// # Errors
    ///
    /// As [`LocalServices::add_service`].
    pub fn add_shared(&self, service: Arc<dyn ServiceDispatch>) -> Result<(), AddServiceError> {
        let mut services = self.inner.services.write();
        let names = service.request_types();
        for (i, &name) in names.iter().enumerate() {
            check_name(name)?;
            if services.contains_key(name) || names[..i].contains(&name) {
                return Err(AddServiceError::AlreadyServed {
                    request_type: name.to_owned(),
                });
            }
        }
        for &name in names {
            services.insert(name.to_owned(), Arc::clone(&service));
        }
        tracing::debug!(
            service = service.service_name(),
            request_types = ?names,
            "service added"
        );
        Ok(())
    }

    /// Stops serving the service that answers `request_type`, and every other type it answers;
    /// the service, if there was one.
    pub fn remove_service(&self, request_type: &str) -> Option<Arc<dyn ServiceDispatch>> {
        let mut services = self.inner.services.write();
        let service = services.remove(request_type)?;
        services.retain(|_, s| !Arc::ptr_eq(s, &service));
        Some(service)
    }

    /// The request types served, sorted.
    pub fn request_types(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.services.read().keys().cloned().collect();
        names.sort_unstable();
        names
    }

    fn service_for(&self, request_type: &str) -> Option<Arc<dyn ServiceDispatch>> {
        self.inner.services.read().get(request_type).cloned()
    }
}

pub(super) fn check_name(name: &str) -> Result<(), AddServiceError> {
    let reason = if name.trim().is_empty() {
        "it is blank"
    } else if name.len() > MAX_TYPE_NAME {
        "it is longer than 1024 bytes"
    } else if is_reserved(name) {
        "it is reserved for the engine"
    } else {
        return Ok(());
    };
    Err(AddServiceError::InvalidName {
        request_type: name.to_owned(),
        reason,
    })
}

impl ServiceTarget for LocalServices {
    fn invoker(&self, session: &AteSession) -> Arc<dyn Invoker> {
        Arc::new(LocalInvoker {
            services: self.clone(),
            callers: session.write_keys().map(|k| k.hash()).collect(),
        })
    }
}

/// Calls [`LocalServices`] as one session.
#[derive(Debug)]
struct LocalInvoker {
    services: LocalServices,
    /// The public-key ids of the session's signing keys.
    callers: Vec<Hash>,
}

#[async_trait::async_trait]
impl Invoker for LocalInvoker {
    async fn invoke(&self, request: RawRequest<'_>) -> Result<Vec<u8>, InvokeError<Vec<u8>>> {
        let Some(service) = self.services.service_for(request.request_type) else {
            return Err(InvokeError::NoService {
                request_type: request.request_type.to_owned(),
            });
        };
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            InvokeError::Transport(TransportError::new(
                "in-process services run on a Tokio runtime, and there is none here",
            ))
        })?;
        let ctx = InvocationContext::new(
            request.id,
            self.callers.iter().copied(),
            self.services.inner.chain.clone(),
        );
        let request_type = request.request_type.to_owned();
        let body = request.body.to_vec();
        let task = runtime.spawn(async move {
            service
                .dispatch(&ctx, &request_type, &body)
                .await
                .map_err(|e| e.into_invoke_error())
        });
        match task.await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(
                    request_type = request.request_type,
                    request_id = %request.id,
                    "a service handler did not finish (it panicked, or the runtime is shutting down)"
                );
                Err(InvokeError::Transport(TransportError::new(format!(
                    "the handler of `{}` did not finish: {e}",
                    request.request_type
                ))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::crypto::{KeySize, PrivateSignKey};
    use crate::schema::DaoType;
    use crate::service::{
        BoxFuture, DispatchError, MessagePart, ServiceClient, run_command, unknown_request,
    };

    /// A request answered with the caller's identity.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct WhoAmI;
    impl DaoType for WhoAmI {
        const TYPE_NAME: &'static str = "test.WhoAmI";
    }

    /// A request whose handler never answers.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Hang;
    impl DaoType for Hang {
        const TYPE_NAME: &'static str = "test.Hang";
    }

    /// A request whose handler panics.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Explode;
    impl DaoType for Explode {
        const TYPE_NAME: &'static str = "test.Explode";
    }

    /// What a handler saw.
    type Seen = (Vec<Hash>, Option<String>, u128);

    struct Probe {
        names: Vec<&'static str>,
    }

    impl Probe {
        fn new() -> Self {
            Probe {
                names: vec![WhoAmI::TYPE_NAME, Hang::TYPE_NAME, Explode::TYPE_NAME],
            }
        }
    }

    impl ServiceDispatch for Probe {
        fn service_name(&self) -> &'static str {
            "Probe"
        }

        fn request_types(&self) -> &[&'static str] {
            &self.names
        }

        fn dispatch<'a>(
            &'a self,
            ctx: &'a InvocationContext,
            request_type: &'a str,
            body: &'a [u8],
        ) -> BoxFuture<'a, Result<Vec<u8>, DispatchError>> {
            match request_type {
                "test.WhoAmI" => run_command(request_type, body, |WhoAmI| async move {
                    let seen: Seen = (
                        ctx.callers().to_vec(),
                        ctx.chain().map(|c| c.as_str().to_owned()),
                        ctx.request_id().as_u128(),
                    );
                    Ok::<_, String>(seen)
                }),
                "test.Hang" => run_command(request_type, body, |Hang| async move {
                    std::future::pending::<Result<(), String>>().await
                }),
                "test.Explode" => run_command(request_type, body, |Explode| async move {
                    panic!("the handler exploded");
                    #[allow(unreachable_code)]
                    Ok::<(), String>(())
                }),
                _ => unknown_request(request_type),
            }
        }
    }

    struct Named(Vec<&'static str>);

    impl ServiceDispatch for Named {
        fn service_name(&self) -> &'static str {
            "Named"
        }

        fn request_types(&self) -> &[&'static str] {
            &self.0
        }

        fn dispatch<'a>(
            &'a self,
            _: &'a InvocationContext,
            request_type: &'a str,
            _: &'a [u8],
        ) -> BoxFuture<'a, Result<Vec<u8>, DispatchError>> {
            unknown_request(request_type)
        }
    }

    #[tokio::test]
    async fn the_handler_sees_the_sessions_signing_keys_and_the_chain() {
        let services = LocalServices::on_chain(ChainKey::from("bank"));
        services.add_service(Probe::new()).unwrap();
        let key = PrivateSignKey::generate(KeySize::Bit128);
        let mut session = AteSession::new();
        session.add_write_key(&key).add_write_key(&key);
        let client = ServiceClient::connect(&services, &session);
        let (callers, chain, _): Seen = client.call::<_, _, String>(WhoAmI).await.unwrap();
        assert_eq!(callers, vec![key.hash()]);
        assert_eq!(chain.as_deref(), Some("bank"));

        // Without keys the request is anonymous; without a chain, none is named.
        let services = LocalServices::new();
        services.add_service(Probe::new()).unwrap();
        let client = ServiceClient::connect(&services, &AteSession::default());
        let (callers, chain, _): Seen = client.call::<_, _, String>(WhoAmI).await.unwrap();
        assert!(callers.is_empty());
        assert_eq!(chain, None);
    }

    #[tokio::test]
    async fn unserved_types_are_no_service_until_added_and_after_removal() {
        let services = LocalServices::new();
        let client = ServiceClient::connect(&services, &AteSession::default());
        let out = client.call::<_, Seen, String>(WhoAmI).await;
        assert!(
            matches!(&out, Err(InvokeError::NoService { request_type }) if request_type == "test.WhoAmI"),
            "{out:?}"
        );
        services.add_service(Probe::new()).unwrap();
        assert_eq!(
            services.request_types(),
            ["test.Explode", "test.Hang", "test.WhoAmI"]
        );
        assert!(client.call::<_, Seen, String>(WhoAmI).await.is_ok());
        assert!(services.remove_service("test.Hang").is_some());
        assert!(services.request_types().is_empty());
        let out = client.call::<_, Seen, String>(WhoAmI).await;
        assert!(matches!(out, Err(InvokeError::NoService { .. })), "{out:?}");
        assert!(services.remove_service("test.Hang").is_none());
    }

    #[tokio::test]
    async fn a_type_is_served_by_one_service() {
        let services = LocalServices::new();
        services.add_service(Probe::new()).unwrap();
        let clash = services.add_service(Named(vec!["other", "test.Hang"]));
        assert_eq!(
            clash,
            Err(AddServiceError::AlreadyServed {
                request_type: "test.Hang".into()
            })
        );
        // Nothing of the refused service was added.
        assert!(!services.request_types().contains(&"other".to_owned()));
        let twice = LocalServices::new().add_service(Named(vec!["a", "b", "a"]));
        assert!(
            matches!(twice, Err(AddServiceError::AlreadyServed { request_type }) if request_type == "a")
        );
    }

    #[test]
    fn names_no_request_can_have_are_refused() {
        let services = LocalServices::new();
        let long: &'static str = Box::leak("x".repeat(MAX_TYPE_NAME + 1).into_boxed_str());
        for name in [" ", "", long, "ate.schema"] {
            let out = services.add_service(Named(vec!["fine", name]));
            assert!(
                matches!(&out, Err(AddServiceError::InvalidName { request_type, .. }) if request_type == name),
                "{name:?}: {out:?}"
            );
        }
        assert!(services.request_types().is_empty());
    }

    #[tokio::test]
    async fn a_caller_that_stops_waiting_gets_a_timeout() {
        let services = LocalServices::new();
        services.add_service(Probe::new()).unwrap();
        let client =
            ServiceClient::connect(&services, &AteSession::default()).with_timeout(Duration::ZERO);
        let out = client.call::<_, (), String>(Hang).await;
        assert!(
            matches!(out, Err(InvokeError::Timeout(d)) if d == Duration::ZERO),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_transport_error_not_a_panic() {
        let services = LocalServices::new();
        services.add_service(Probe::new()).unwrap();
        let client = ServiceClient::connect(&services, &AteSession::default());
        let out = client.call::<_, (), String>(Explode).await;
        let Err(InvokeError::Transport(e)) = out else {
            panic!("{out:?}");
        };
        assert!(e.to_string().contains("test.Explode"), "{e}");
        // The services still answer.
        assert!(client.call::<_, Seen, String>(WhoAmI).await.is_ok());
    }

    #[test]
    fn without_a_runtime_the_call_fails_instead_of_panicking() {
        let services = LocalServices::new();
        services.add_service(Probe::new()).unwrap();
        let invoker = services.invoker(&AteSession::default());
        let body = crate::service::encode(MessagePart::Request, "test.WhoAmI", &WhoAmI).unwrap();
        let mut call = invoker.invoke(RawRequest::new("test.WhoAmI", &body));
        // Polled once, outside any runtime: it answers at once.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let std::task::Poll::Ready(out) = call.as_mut().poll(&mut cx) else {
            panic!("the call waits without a runtime");
        };
        assert!(matches!(out, Err(InvokeError::Transport(_))), "{out:?}");
    }
}
