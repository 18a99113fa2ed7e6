// libFuzzer target: `.env` parsing must return variables or throw ConfigError (and render it).
@testable import SwiftProcKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        _ = try EnvFile.parse(text, path: ".env")
    } catch {
        _ = error.rendered
    }
    return 0
}
