//! The service side: a handler behind [`ServiceDispatch`], which a transport feeds with
//! requests as they arrive (a type name and bytes) and whose answers it carries back.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::{self, MessagePart};
use super::context::InvocationContext;
use super::error::DispatchError;

/// A boxed future that can run on any task: what the methods of object-safe async traits
/// return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a transport serves: a handler that answers requests of a few types, given as their
/// stable type names and MessagePack bytes.
///
/// `#[service]` implements it for `{Trait}Service<H>`, for any handler `H` of the trait; it
/// can be written by hand too (a proxy, a test double), with [`run_command`] for each type it
/// serves and [`unknown_request`] for the rest. It is object safe: a transport holds an
/// `Arc<dyn ServiceDispatch>` and runs [`ServiceDispatch::dispatch`] on tasks of its own.
pub trait ServiceDispatch: Send + Sync {
    /// The service's name, for logs (the trait's name for `#[service]`).
    fn service_name(&self) -> &'static str;

    /// The stable type names of the requests this service answers, one per command.
    fn request_types(&self) -> &[&'static str];

    /// Answers one request: decodes `body` as the request type named `request_type`, runs the
    /// command's handler with `ctx`, and encodes what it returns.
    ///
    /// # Errors
    ///
    /// [`DispatchError::Handler`] with the handler's error, encoded;
    /// [`DispatchError::NoService`] for a type the service does not serve;
    /// [`DispatchError::Decode`] for a body that is not a request of that type;
    /// [`DispatchError::Encode`] for a reply or an error that does not encode.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the handler's future wherever it is waiting: a transport
    /// should let it finish (run it on a task of its own), as handlers are written to run to
    /// completion.
    fn dispatch<'a>(
        &'a self,
        ctx: &'a InvocationContext,
        request_type: &'a str,
        body: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, DispatchError>>;
}

/// One command of a dispatch: decodes `body` as a `Req` (checked as every received message is,
/// see [`decode`](super::decode)), calls `handler` with it and encodes its outcome.
///
/// A request that does not decode never reaches the handler ([`DispatchError::Decode`]).
pub fn run_command<'a, Req, Res, E, Fut>(
    request_type: &'a str,
    body: &[u8],
    handler: impl FnOnce(Req) -> Fut,
) -> BoxFuture<'a, Result<Vec<u8>, DispatchError>>
where
    Req: DeserializeOwned,
    Res: Serialize,
    E: Serialize,
    Fut: Future<Output = Result<Res, E>> + Send + 'a,
{
    let request = match codec::decode::<Req>(MessagePart::Request, request_type, body) {
        Ok(request) => request,
        Err(e) => return Box::pin(std::future::ready(Err(DispatchError::Decode(e)))),
    };
    let answer = handler(request);
    Box::pin(async move {
        match answer.await {
            Ok(reply) => codec::encode(MessagePart::Reply, request_type, &reply)
                .map_err(DispatchError::Encode),
            Err(e) => match codec::encode(MessagePart::HandlerError, request_type, &e) {
                Ok(bytes) => Err(DispatchError::Handler(bytes)),
                Err(e) => Err(DispatchError::Encode(e)),
            },
        }
    })
}

/// The answer of a dispatch to a request type it does not serve: [`DispatchError::NoService`].
pub fn unknown_request<'a>(request_type: &str) -> BoxFuture<'a, Result<Vec<u8>, DispatchError>> {
    Box::pin(std::future::ready(Err(DispatchError::NoService {
        request_type: request_type.to_owned(),
    })))
}

/// Whether no two of `names` are equal; `#[service]` checks its request types' stable names
/// with it at compile time (a request is dispatched by its name, so each command needs its own).
pub const fn distinct_names(names: &[&str]) -> bool {
    let mut i = 0;
    while i < names.len() {
        let mut j = i + 1;
        while j < names.len() {
            if const_eq(names[i], names[j]) {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_compared_whole() {
        assert!(distinct_names(&[]));
        assert!(distinct_names(&["a", "ab", "b", "ba"]));
        assert!(!distinct_names(&["a", "b", "a"]));
        const { assert!(distinct_names(&["bank.Deposit", "bank.Withdraw"])) };
    }

    #[tokio::test]
    async fn a_command_decodes_runs_and_encodes() {
        let body = codec::encode(MessagePart::Request, "add", &(2u32, 3u32)).unwrap();
        let reply = run_command("add", &body, |(a, b): (u32, u32)| async move {
            Ok::<u32, String>(a + b)
        })
        .await
        .unwrap();
        assert_eq!(rmp_serde::from_slice::<u32>(&reply).unwrap(), 5);

        let failed = run_command("add", &body, |(_, _): (u32, u32)| async move {
            Err::<u32, String>("no".into())
        })
        .await;
        let Err(DispatchError::Handler(bytes)) = failed else {
            panic!("{failed:?}");
        };
        assert_eq!(rmp_serde::from_slice::<String>(&bytes).unwrap(), "no");
    }

    #[tokio::test]
    async fn a_request_that_does_not_decode_never_reaches_the_handler() {
        let body = codec::encode(MessagePart::Request, "add", &"text").unwrap();
        let out = run_command(
            "add",
            &body,
            |_: (u32, u32)| -> std::future::Ready<Result<u32, String>> {
                panic!("the handler ran")
            },
        )
        .await;
        assert!(
            matches!(&out, Err(DispatchError::Decode(e)) if e.part == MessagePart::Request),
            "{out:?}"
        );
        let out = unknown_request("nope").await;
        assert!(
            matches!(out, Err(DispatchError::NoService { request_type }) if request_type == "nope")
        );
    }
}
