// libFuzzer target: Procfile parsing must return entries or throw ConfigError (and render it).
@testable import SwiftProcKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        _ = try Procfile.parse(text, path: "Procfile")
    } catch {
        _ = error.rendered
    }
    return 0
}
