//! The code `#[service]` generates names everything by absolute path: it compiles without the
//! prelude (in a `#[no_implicit_prelude]` module), next to local items that shadow std's and
//! its own names, with raw identifiers, under `#![forbid(unsafe_code)]` and
//! `#![deny(missing_docs, warnings)]`, for a public trait.

#![forbid(unsafe_code)]
#![deny(missing_docs, warnings)]

#[allow(dead_code)]
struct Option;
#[allow(dead_code)]
struct Result;
#[allow(dead_code)]
struct Vec;
#[allow(dead_code)]
struct Box;
#[allow(dead_code)]
struct Arc;
#[allow(dead_code)]
struct Send;
#[allow(dead_code)]
struct Sync;
#[allow(dead_code)]
struct Future;
#[allow(dead_code)]
struct Duration;
#[allow(dead_code)]
struct InvocationContext;
#[allow(dead_code)]
mod ate_private {}

/// Models and a service declared where nothing is in scope.
#[no_implicit_prelude]
pub mod bare {
    /// A request.
    #[derive(::serde::Serialize, ::serde::Deserialize)]
    pub struct Ping {
        /// Sent back.
        pub payload: ::std::string::String,
    }

    ::ate::stable_name!(Ping = "echo.Ping");

    /// Another request, with a raw name.
    #[derive(::serde::Serialize, ::serde::Deserialize)]
    pub struct r#Type;

    ::ate::stable_name!(r#Type = "echo.Type");

    /// A service, with a command named by a keyword.
    #[::ate::service]
    pub trait Echo {
        /// Sends the payload back.
        async fn ping(
            &self,
            ctx: &::ate::service::InvocationContext,
            request: Ping,
        ) -> ::std::result::Result<::std::string::String, ::std::string::String>;

        /// Says nothing.
        async fn r#type(
            &self,
            ctx: &::ate::service::InvocationContext,
            r#type: r#Type,
        ) -> ::std::result::Result<(), ()>;
    }
}

struct Echoes;

impl bare::Echo for Echoes {
    async fn ping(
        &self,
        _: &ate::service::InvocationContext,
        request: bare::Ping,
    ) -> std::result::Result<String, String> {
        Ok(request.payload)
    }

    async fn r#type(
        &self,
        _: &ate::service::InvocationContext,
        _: bare::r#Type,
    ) -> std::result::Result<(), ()> {
        Ok(())
    }
}

fn main() {
    use ate::service::ServiceDispatch;
    let service = bare::EchoService::new(Echoes);
    assert_eq!(service.request_types(), ["echo.Ping", "echo.Type"]);
    let services = ate::LocalServices::new();
    services.add_service(service).unwrap();
    let client = bare::EchoClient::new(&services, &ate::AteSession::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ping = bare::Ping {
            payload: "hello".to_owned(),
        };
        assert_eq!(client.ping(ping).await.unwrap(), "hello");
        client.r#type(bare::r#Type).await.unwrap();
    });
}
