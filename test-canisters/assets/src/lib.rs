//! `assets`: the asset canister `dfx` deploys for frontends, assembled from the published
//! `ic-certified-assets` crate the way dfinity's `ic-frontend-canister` is.
//!
//! Interface: the crate's (`assets.did` in it): `store`, the batch API (`create_batch`,
//! `create_chunk`, `commit_batch`, ...), `list`, `get`, the permission methods and
//! `http_request`, a query that answers with an `IC-Certificate` header built from the data
//! certificate. The install argument is `(opt AssetCanisterArgs)`; the installer gets `Commit`
//! permission. The assets survive upgrades: `pre_upgrade` writes the crate's stable state to
//! stable memory as Candid, `post_upgrade` reads it back and re-sets the certified data.

use ic_certified_assets::types::AssetCanisterArgs;

#[ic_cdk::init]
fn init(args: Option<AssetCanisterArgs>) {
    ic_certified_assets::init(args);
}

#[ic_cdk::pre_upgrade]
fn pre_upgrade() {
    let state = ic_certified_assets::pre_upgrade();
    ic_cdk::storage::stable_save((state,)).expect("failed to save the asset canister's state");
}

#[ic_cdk::post_upgrade]
fn post_upgrade(args: Option<AssetCanisterArgs>) {
    let (state,): (ic_certified_assets::StableState,) =
        ic_cdk::storage::stable_restore().expect("failed to restore the asset canister's state");
    ic_certified_assets::post_upgrade(state, args);
}

ic_certified_assets::export_canister_methods!();
