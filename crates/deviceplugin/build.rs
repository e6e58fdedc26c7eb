//! Generates the device plugin API's messages (prost) and its two gRPC services'
//! clients and servers (tonic) from proto/deviceplugin.proto, in pure Rust: protox
//! compiles the .proto to descriptors, so no protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/deviceplugin.proto");
    let descriptors = protox::compile(["deviceplugin.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
