// swift-tools-version: 6.0
// swiftproc: run a fly.toml's [processes] (or a Procfile) on a laptop.
// No package dependencies by design: only the toolchain (Foundation, Dispatch, Glibc/Darwin, Testing).
import PackageDescription

let package = Package(
    name: "swiftproc",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "swiftproc", targets: ["swiftproc"]),
        .executable(name: "toml-test-decoder", targets: ["toml-test-decoder"]),
        .executable(name: "swiftproc-demo", targets: ["swiftproc-demo"]),
        .library(name: "TOML", targets: ["TOML"]),
        .library(name: "SwiftProcKit", targets: ["SwiftProcKit"]),
    ],
    targets: [
        .target(name: "TOML"),
        .target(name: "SwiftProcKit", dependencies: ["TOML"]),
        .executableTarget(name: "swiftproc", dependencies: ["SwiftProcKit"]),
        .executableTarget(name: "toml-test-decoder", dependencies: ["TOML"]),
        // A tiny HTTP server to supervise in samples, end-to-end tests and benchmarks (no Ruby/Python needed).
        .executableTarget(name: "swiftproc-demo"),
        .testTarget(name: "TOMLTests", dependencies: ["TOML"]),
        .testTarget(name: "SwiftProcKitTests", dependencies: ["SwiftProcKit"]),
        // Drives the built `swiftproc` binary; depending on the executable makes `swift test` build it.
        .testTarget(name: "EndToEndTests", dependencies: ["swiftproc", "swiftproc-demo", "SwiftProcKit"]),
    ],
    swiftLanguageModes: [.v6]
)
