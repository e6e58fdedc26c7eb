//! Generates the NRI message types and the ttRPC client and server of proto/nri.proto
//! (pure Rust: ttrpc-codegen parses the .proto itself, no protoc).

#[cfg(not(feature = "protocol"))]
fn main() {}

#[cfg(feature = "protocol")]
fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=proto/nri.proto");
    let out = std::path::PathBuf::from(
        std::env::var_os("OUT_DIR")
            .ok_or_else(|| std::io::Error::other("cargo sets OUT_DIR for build scripts"))?,
    );
    ttrpc_codegen::Codegen::new()
        .out_dir(&out)
        .input("proto/nri.proto")
        .include("proto")
        .rust_protobuf()
        .customize(ttrpc_codegen::Customize {
            async_all: true,
            ..Default::default()
        })
        .rust_protobuf_customize(ttrpc_codegen::ProtobufCustomize::default().gen_mod_rs(false))
        .run()?;
    // The generated files start with inner attributes, which `include!` cannot take:
    // they become modules by path instead.
    let mut modules = String::new();
    for name in ["nri", "nri_ttrpc"] {
        let file = out.join(format!("{name}.rs"));
        modules += &format!(
            "#[path = {:?}]\npub mod {name};\n",
            file.display().to_string()
        );
    }
    std::fs::write(out.join("generated.rs"), modules)
}
