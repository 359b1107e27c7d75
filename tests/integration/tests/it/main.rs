//! All integration tests in one binary (one link, shared helpers).

mod eks;
mod kube_fake;
mod store_contract;
