//! `batonctl webhook`: a mutating admission webhook that puts baton into every Pod created with the
//! annotation `baton.dev/inject: "true"` — the injection of `batonctl inject` (crate `baton_inject`,
//! reused as it is), answered as a JSON Patch.
//!
//! - [`admission`]: an AdmissionReview in, the AdmissionReview to answer out; no I/O.
//! - [`images`]: the images' ENTRYPOINT and CMD, resolved before the injection runs (the `--images`
//!   file, then the registries, cached, within the request's deadline).
//! - [`tls`]: the serving certificate, re-read when its files change (checked at each handshake).
//! - [`server`]: HTTPS (rustls, hyper): `POST /mutate`, `GET /healthz`, a graceful stop.
//! - [`limits`]: what one client may hold: connections, the request's time, a review's size.
//! - [`certs`]: a CA and a serving certificate for clusters without cert-manager (rcgen).
//!
//! Its command line, `batonctl webhook` and `batonctl webhook certs`, is wiring in the binary.

pub mod admission;
pub mod certs;
pub mod images;
pub mod limits;
pub mod server;
pub mod tls;
