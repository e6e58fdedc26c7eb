//! The messages against bytes built by hand from the field numbers of the kubelet's
//! api.proto: what the kubelet (grpc-go) sends decodes here, and what this crate sends
//! decodes there. Protobuf's wire format: a key (field number << 3 | wire type; type 0
//! a varint, 2 a length-delimited field), then the value.

#![allow(clippy::unwrap_used)]

use prost::Message;

use crate::api;

/// A length-delimited field (strings, bytes, embedded messages).
fn ld(field: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128 && field < 16);
    let mut v = vec![field << 3 | 2, body.len() as u8];
    v.extend_from_slice(body);
    v
}

fn varint(field: u8, value: u8) -> Vec<u8> {
    assert!(value < 128 && field < 16);
    vec![field << 3, value]
}

#[test]
fn register_request_has_the_kubelets_field_numbers() {
    let r = crate::session::registration(
        &crate::plugin::Config {
            resource_name: "lxcfs-rs.io/proc".into(),
            devices: 1,
            cdi_device: "lxcfs-rs.io/proc=default".into(),
        },
        "lxcfs-rs.sock",
    );
    let mut expected = ld(1, b"v1beta1");
    expected.extend(ld(2, b"lxcfs-rs.sock"));
    expected.extend(ld(3, b"lxcfs-rs.io/proc"));
    // Options with both flags false: an empty embedded message, still present.
    expected.extend(ld(4, b""));
    assert_eq!(r.encode_to_vec(), expected);
}

#[test]
fn options_flags_are_fields_one_and_two() {
    let o = api::DevicePluginOptions {
        pre_start_required: true,
        get_preferred_allocation_available: true,
    };
    assert_eq!(o.encode_to_vec(), [varint(1, 1), varint(2, 1)].concat());
    assert_eq!(crate::plugin::options().encode_to_vec(), Vec::<u8>::new());
}

#[test]
fn an_allocate_request_from_the_kubelet_decodes() {
    // Two containers: ["lxcfs-rs-0"] and ["lxcfs-rs-1", "lxcfs-rs-2"].
    let c1 = ld(1, b"lxcfs-rs-0");
    let c2 = [ld(1, b"lxcfs-rs-1"), ld(1, b"lxcfs-rs-2")].concat();
    let bytes = [ld(1, &c1), ld(1, &c2)].concat();
    let r = api::AllocateRequest::decode(bytes.as_slice()).unwrap();
    assert_eq!(r.container_requests.len(), 2);
    assert_eq!(r.container_requests[0].devices_ids, ["lxcfs-rs-0"]);
    assert_eq!(
        r.container_requests[1].devices_ids,
        ["lxcfs-rs-1", "lxcfs-rs-2"]
    );
}

#[test]
fn the_cdi_device_is_field_five_of_a_container_answer() {
    let config = crate::plugin::Config {
        resource_name: "lxcfs-rs.io/proc".into(),
        devices: 1,
        cdi_device: "lxcfs-rs.io/proc=default".into(),
    };
    let req = api::AllocateRequest {
        container_requests: vec![api::ContainerAllocateRequest {
            devices_ids: vec!["lxcfs-rs-0".into()],
        }],
    };
    let r = crate::plugin::allocate(&config, &req).unwrap();
    // AllocateResponse{1: ContainerAllocateResponse{5: CDIDevice{1: name}}}.
    let device = ld(1, b"lxcfs-rs.io/proc=default");
    let container = ld(5, &device);
    assert_eq!(r.encode_to_vec(), ld(1, &container));
}

#[test]
fn a_device_list_has_id_one_health_two() {
    let l = crate::plugin::device_list(1, false);
    let device = [ld(1, b"lxcfs-rs-0"), ld(2, b"Unhealthy")].concat();
    assert_eq!(l.encode_to_vec(), ld(1, &device));
    // And a topology (field 3) the kubelet may send back is kept.
    let with_numa = [device.clone(), ld(3, &ld(1, &varint(1, 1)))].concat();
    let d = api::Device::decode(with_numa.as_slice()).unwrap();
    assert_eq!(d.topology.unwrap().nodes[0].id, 1);
}

#[test]
fn unknown_fields_and_truncated_input_do_not_panic() {
    // A field a newer kubelet might add (15) is skipped.
    let mut bytes = ld(1, &ld(1, b"lxcfs-rs-0"));
    bytes.extend(ld(15, b"future"));
    let r = api::AllocateRequest::decode(bytes.as_slice()).unwrap();
    assert_eq!(r.container_requests.len(), 1);
    for cut in 0..bytes.len() {
        let _ = api::AllocateRequest::decode(&bytes[..cut]);
    }
}

proptest::proptest! {
    /// Whatever arrives on the socket, decoding answers (an error or a message).
    #[test]
    fn decoding_any_bytes_is_total(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
        let _ = api::AllocateRequest::decode(bytes.as_slice());
        let _ = api::RegisterRequest::decode(bytes.as_slice());
        let _ = api::ListAndWatchResponse::decode(bytes.as_slice());
        let _ = api::PreferredAllocationRequest::decode(bytes.as_slice());
    }
}
