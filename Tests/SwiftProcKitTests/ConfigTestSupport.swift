import Foundation
@testable import SwiftProcKit

/// A fresh directory under the system temp dir holding `files` (name → contents), removed by
/// the caller with `cleanUp`.
struct TempApp {
    let directory: String

    init(_ files: [String: String]) throws {
        let base = FileManager.default.temporaryDirectory
            .appendingPathComponent("swiftproc-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        directory = base.standardizedFileURL.path
        for (name, text) in files {
            try write(name, text)
        }
    }

    func write(_ name: String, _ text: String) throws {
        let url = URL(fileURLWithPath: directory).appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func cleanUp() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Parses fly.toml text into an ``AppConfig`` for tests.
func flyConfig(_ text: String, path: String = "fly.toml") throws -> AppConfig {
    try ConfigLoader.parseFlyToml(text, path: path, directory: "/app")
}

/// The ConfigError a closure throws, or nil.
func configError(_ body: () throws -> Void) -> ConfigError? {
    do {
        try body()
        return nil
    } catch let error as ConfigError {
        return error
    } catch {
        return nil
    }
}
