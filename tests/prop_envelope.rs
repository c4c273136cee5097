//! The affinity envelope on stable, with the properties of the `envelope` fuzz target
//! (`fuzz/src/envelope.rs`, included here): nothing opens without the key, and no edit of a
//! sealed id opens.

#[path = "../fuzz/src/envelope.rs"]
mod envelope;

use envelope::{Edit, check_open, check_sealed};
use proptest::prelude::*;

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (
            any::<usize>(),
            prop::sample::select(b"AZaz09-_=+/.".to_vec())
        )
            .prop_map(|(i, b)| Edit::Replace(i, b)),
        any::<usize>().prop_map(Edit::Remove),
        (any::<usize>(), prop::sample::select(b"Aa0-_=".to_vec()))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Cut),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_ids_never_open(token in prop::collection::vec(any::<u8>(), 0..160)) {
        check_open(&token);
    }

    #[test]
    fn arbitrary_base64url_ids_never_open(token in "[A-Za-z0-9_-]{0,160}") {
        check_open(token.as_bytes());
    }

    #[test]
    fn sealed_ids_open_only_unchanged_and_with_the_key(
        session in "[!-~]{1,64}",
        replica in "[a-z0-9:./-]{0,16}",
        principal in prop::option::of("[a-z]{0,8}"),
        at in any::<u32>(),
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        check_sealed(session.as_bytes(), &replica, principal.as_deref(), at, &edits);
    }
}
