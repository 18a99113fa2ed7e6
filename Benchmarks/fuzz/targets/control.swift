// libFuzzer target: a control-protocol request line must parse or be refused with a message,
// and a parsed scale request's words must apply to a formation without trapping.
@testable import SwiftProcKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let line = Array(UnsafeBufferPointer(start: data, count: size))
    switch ControlRequestParser.parse(line) {
    case .success(let request):
        let known = ["web", "worker"]
        let current = Formation([.init(group: "web", count: 3), .init(group: "worker", count: Int.max)])
        if let change = try? FormationChange.parse(request.arguments, known: known, defaultGroup: "web") {
            _ = change.applied(to: current)
        }
    case .failure(let error):
        _ = error.message
    }
    return 0
}
