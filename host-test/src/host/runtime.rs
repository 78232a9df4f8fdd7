//! Loads the component once and opens nodes from it: one wasmtime store, WASI context and
//! elector per node. Every outgoing request goes through [`NodeHooks::send_request`], the single
//! place where faults are injected and requests counted.

use crate::api;
use crate::host::clocks::{NodeMonotonicClock, NodeWallClock};
use crate::host::faults::{Fault, Faults};
use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::api::bindings::{
    ElectionHost as ElectionComponent, ElectionHostPre as ElectionComponentPre,
};

/// The component's path: `$S3_ELECTION_WASM`, or the release build in this workspace.
pub fn default_component_path() -> PathBuf {
    if let Some(p) = std::env::var_os("S3_ELECTION_WASM") {
        return PathBuf::from(p);
    }
    crate::workspace_dir().join("target/component/s3_election.wasm")
}

/// The names of everything a component file imports.
pub fn component_imports(path: &Path) -> Result<Vec<String>> {
    let engine = Engine::new(&Config::new())?;
    let component = Component::from_file(&engine, path)?;
    Ok(component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_string())
        .collect())
}

/// Per-node store data.
pub struct NodeState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: NodeHooks,
}

impl WasiView for NodeState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for NodeState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The outgoing-request hook of one node.
pub struct NodeHooks {
    faults: Arc<Faults>,
}

impl wasmtime_wasi_http::WasiHttpHooks for NodeHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn std::future::Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<
                            dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>>
                                + Send,
                        >,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        _ = fut;
        let faults = self.faults.clone();
        Box::new(async move {
            use http_body_util::BodyExt;
            use wasmtime_wasi_http::Error as HttpError;
            faults.count(request.method(), request.uri());
            let kind = crate::host::faults::request_kind(request.method(), request.uri());
            if crate::host::faults::is_lease_write(request.method(), request.uri())
                && !request.headers().contains_key("if-match")
                && !request.headers().contains_key("if-none-match")
            {
                faults.saw_unconditional_lease_write();
            }
            if faults.is_partitioned() {
                return Err(HttpError::ConnectionRefused);
            }
            let fault = faults.take(request.method(), request.uri());
            match &fault {
                Some(Fault::Drop) => {
                    // Nothing comes back: the node waits out its own timeout.
                    let wait = options
                        .and_then(|o| o.first_byte_timeout.or(o.connect_timeout))
                        .unwrap_or(Duration::from_secs(2));
                    tokio::time::sleep(wait).await;
                    return Err(HttpError::ConnectionReadTimeout);
                }
                Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
                Some(Fault::Status(code)) => return Ok(synthetic_answer(*code)),
                Some(Fault::CutResponse | Fault::StripHeader(_) | Fault::ShiftDate(_)) | None => {}
            }
            if let Some(s3) = faults.in_process() {
                let (parts, body) = request.into_parts();
                let body = body.collect().await?.to_bytes();
                let answer = s3.answer(&parts.method, &parts.uri, &parts.headers, body);
                let answer = answer.map(|b| {
                    http_body_util::Full::new(b)
                        .map_err(|never| match never {})
                        .boxed_unsync()
                });
                return Ok((
                    answer,
                    Box::new(async { Ok(()) }) as Box<dyn std::future::Future<Output = _> + Send>,
                ));
            }
            let lease_write = crate::host::faults::is_lease_write(request.method(), request.uri());
            let sent = std::time::Instant::now();
            let (response, io) =
                match wasmtime_wasi_http::default_send_request(request, options).await {
                    Ok(answer) => answer,
                    Err(e) => {
                        faults.answered(kind, None);
                        return Err(e);
                    }
                };
            faults.answered(kind, Some(response.status().as_u16()));
            if lease_write {
                faults.lease_write_took(sent.elapsed());
            }
            let mut response = response;
            match fault {
                Some(Fault::CutResponse) => {
                    // The store has answered (so applied the request); the node never hears it.
                    drop(response);
                    return Err(HttpError::ConnectionTerminated);
                }
                Some(Fault::StripHeader(name)) => {
                    response.headers_mut().remove(name);
                }
                Some(Fault::ShiftDate(seconds)) => shift_date(response.headers_mut(), seconds),
                _ => {}
            }
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
            ))
        })
    }
}

type Answer = (
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
);

/// Move the `Date` header by `seconds` (a gateway or proxy whose clock is off).
fn shift_date(headers: &mut http::HeaderMap, seconds: i64) {
    let Some(date) = headers
        .get("date")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
    else {
        return;
    };
    let shifted = if seconds >= 0 {
        date + Duration::from_secs(seconds.unsigned_abs())
    } else {
        date - Duration::from_secs(seconds.unsigned_abs())
    };
    if let Ok(value) = http::HeaderValue::from_str(&httpdate::fmt_http_date(shifted)) {
        headers.insert("date", value);
    }
}

/// An S3-style error answer made up by the "network" (never reached the store).
fn synthetic_answer(status: u16) -> Answer {
    use http_body_util::{BodyExt, Full};
    let code = match status {
        409 => "ConditionalRequestConflict",
        503 => "SlowDown",
        _ => "InternalError",
    };
    let xml = format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>injected by host-test</Message></Error>");
    let body = Full::new(bytes::Bytes::from(xml))
        .map_err(|never| match never {})
        .boxed_unsync();
    let response = http::Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(body)
        .expect("a valid synthetic response");
    (response, Box::new(async { Ok(()) }))
}

/// A compiled component, ready to open many nodes.
pub struct Runtime {
    engine: Engine,
    pre: ElectionComponentPre<NodeState>,
    pub component_path: PathBuf,
    pub component_bytes: u64,
    /// Compile time of the component, for the benchmark table.
    pub compile_time: std::time::Duration,
}

impl Runtime {
    pub fn load(path: &Path) -> Result<Runtime> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "reading the component {} (build it with `make component`)",
                path.display()
            )
        })?;
        let config = Config::new();
        let engine = Engine::new(&config)?;
        let started = Instant::now();
        let component = Component::new(&engine, &bytes)
            .map_err(|e| anyhow!("compiling {}: {e:#}", path.display()))?;
        let compile_time = started.elapsed();
        let mut linker = Linker::<NodeState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        let pre = ElectionComponentPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Runtime {
            engine,
            pre,
            component_path: path.to_path_buf(),
            component_bytes: bytes.len() as u64,
            compile_time,
        })
    }

    /// The names of everything the component imports (for the "only wasi:*" check).
    pub fn import_names(&self) -> Vec<String> {
        self.pre
            .instance_pre()
            .component()
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// A fresh instance (as a cron trigger would have) claims `slot` of a singleton job.
    pub async fn claim_slot(
        &self,
        s3: &api::S3Config,
        job: &api::Job,
        slot: u64,
        faults: Arc<Faults>,
    ) -> Result<Result<api::SlotClaim, api::Error>> {
        let mut store = self.store(faults);
        let instance = self.pre.instantiate_async(&mut store).await?;
        Ok(instance
            .s3_election_election_election()
            .call_claim_slot(&mut store, s3, job, slot)
            .await?)
    }

    /// `claim_slot` with the caller's claim id (`claim-slot-as`, 0.2.1).
    pub async fn claim_slot_as(
        &self,
        s3: &api::S3Config,
        job: &api::Job,
        slot: u64,
        claim_id: &str,
        faults: Arc<Faults>,
    ) -> Result<Result<api::SlotClaim, api::Error>> {
        let mut store = self.store(faults);
        let instance = self.pre.instantiate_async(&mut store).await?;
        Ok(instance
            .s3_election_election_election()
            .call_claim_slot_as(&mut store, s3, job, slot, claim_id)
            .await?)
    }

    /// A fresh instance reads the lease object (`read-lease`, 0.2.1).
    pub async fn read_lease(
        &self,
        s3: &api::S3Config,
        election: &api::ElectionRef,
        faults: Arc<Faults>,
    ) -> Result<Result<api::LeaseState, api::Error>> {
        let mut store = self.store(faults);
        let instance = self.pre.instantiate_async(&mut store).await?;
        Ok(instance
            .s3_election_election_election()
            .call_read_lease(&mut store, s3, election)
            .await?)
    }

    /// A fresh instance runs the store conformance probe, on the scratch key of `election`'s
    /// node id.
    pub async fn probe_store(
        &self,
        s3: &api::S3Config,
        election: &api::ElectionConfig,
        faults: Arc<Faults>,
    ) -> Result<Result<api::StoreProfile, api::Error>> {
        let mut store = self.store(faults);
        let instance = self.pre.instantiate_async(&mut store).await?;
        Ok(instance
            .s3_election_election_election()
            .call_probe_store(&mut store, s3, &election.election, &election.node_id)
            .await?)
    }

    /// A fresh instance asks who leads (one read, no node id).
    pub async fn who_leads(
        &self,
        s3: &api::S3Config,
        election: &api::ElectionRef,
        faults: Arc<Faults>,
    ) -> Result<Result<Option<api::LeaderInfo>, api::Error>> {
        let mut store = self.store(faults);
        let instance = self.pre.instantiate_async(&mut store).await?;
        Ok(instance
            .s3_election_election_election()
            .call_who_leads(&mut store, s3, election)
            .await?)
    }

    /// Instantiate without calling anything (the benchmark of a cold invocation).
    pub async fn instantiate_only(&self) -> Result<()> {
        let mut store = self.store(Faults::new());
        self.pre.instantiate_async(&mut store).await?;
        Ok(())
    }

    fn store(&self, faults: Arc<Faults>) -> Store<NodeState> {
        let wasi = WasiCtxBuilder::new()
            .inherit_stderr()
            .monotonic_clock(NodeMonotonicClock(faults.clock.clone()))
            .wall_clock(NodeWallClock(faults.clock.clone()))
            .build();
        Store::new(
            &self.engine,
            NodeState {
                wasi,
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                hooks: NodeHooks { faults },
            },
        )
    }

    /// Instantiate the component and open an elector in it.
    pub async fn open(
        &self,
        s3: &api::S3Config,
        election: &api::ElectionConfig,
        faults: Arc<Faults>,
    ) -> Result<Result<Node, api::Error>> {
        let mut store = self.store(faults);
        let instance = self.pre.instantiate_async(&mut store).await?;
        let opened = instance
            .s3_election_election_election()
            .elector()
            .call_open(&mut store, s3, election)
            .await?;
        Ok(opened.map(|elector| Node {
            store,
            instance,
            elector,
        }))
    }

    /// [`Runtime::open`] with the settings added after 0.2.0 (`elector.open-with`).
    pub async fn open_with(
        &self,
        s3: &api::S3Config,
        election: &api::ElectionConfig,
        options: api::Options,
        faults: Arc<Faults>,
    ) -> Result<Result<Node, api::Error>> {
        let mut store = self.store(faults);
        let instance = self.pre.instantiate_async(&mut store).await?;
        let opened = instance
            .s3_election_election_election()
            .elector()
            .call_open_with(&mut store, s3, election, options)
            .await?;
        Ok(opened.map(|elector| Node {
            store,
            instance,
            elector,
        }))
    }
}

/// One running component instance with one elector.
pub struct Node {
    store: Store<NodeState>,
    instance: ElectionComponent,
    elector: ResourceAny,
}

impl Node {
    pub async fn tick(&mut self) -> Result<Result<api::Status, api::Error>> {
        let (api, elector) = (self.instance.s3_election_election_election(), self.elector);
        Ok(api.elector().call_tick(&mut self.store, elector).await?)
    }

    pub async fn resign(&mut self) -> Result<Result<api::Status, api::Error>> {
        let (api, elector) = (self.instance.s3_election_election_election(), self.elector);
        Ok(api.elector().call_resign(&mut self.store, elector).await?)
    }

    pub async fn leave(&mut self) -> Result<Result<api::Status, api::Error>> {
        let (api, elector) = (self.instance.s3_election_election_election(), self.elector);
        Ok(api.elector().call_leave(&mut self.store, elector).await?)
    }

    /// The status without any request.
    pub async fn status(&mut self) -> Result<api::Status> {
        let (api, elector) = (self.instance.s3_election_election_election(), self.elector);
        Ok(api.elector().call_status(&mut self.store, elector).await?)
    }

    pub async fn set_credentials(&mut self, credentials: &api::Credentials) -> Result<()> {
        let (api, elector) = (self.instance.s3_election_election_election(), self.elector);
        Ok(api
            .elector()
            .call_set_credentials(&mut self.store, elector, credentials)
            .await?)
    }

    /// The lease object as this elector last read it (`lease-state`, 0.2.1).
    pub async fn lease_state(&mut self) -> Result<api::LeaseState> {
        let (api, elector) = (self.instance.s3_election_election_election(), self.elector);
        Ok(api
            .elector()
            .call_lease_state(&mut self.store, elector)
            .await?)
    }

    /// Everything the elector noticed about its deployment (`notices`, 0.2.1).
    pub async fn notices(&mut self) -> Result<Vec<api::Notice>> {
        let (api, elector) = (self.instance.s3_election_election_election(), self.elector);
        Ok(api.elector().call_notices(&mut self.store, elector).await?)
    }

    pub async fn query_leader(&mut self) -> Result<Result<Option<api::LeaderInfo>, api::Error>> {
        let (api, elector) = (self.instance.s3_election_election_election(), self.elector);
        Ok(api
            .elector()
            .call_query_leader(&mut self.store, elector)
            .await?)
    }
}
