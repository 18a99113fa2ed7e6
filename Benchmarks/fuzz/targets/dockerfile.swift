// libFuzzer target: the Dockerfile reader never fails or traps; whatever it reads must give a
// command line that splits back into words (as `sh -c` and flyctl's shell split read it).
@testable import SwiftProcKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let dockerfile = Dockerfile.parse(text)
    if let argv = dockerfile.argv {
        _ = dockerfile.commandLine(argv)
        _ = ShellQuoting.split(argv.map(ShellQuoting.quote).joined(separator: " "))
    }
    _ = dockerfile.origin
    return 0
}
