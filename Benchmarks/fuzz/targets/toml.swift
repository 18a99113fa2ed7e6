// libFuzzer target: the TOML decoder must throw TOMLError or succeed — never trap or hang.
import TOML

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? TOMLTable(parsing: Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
