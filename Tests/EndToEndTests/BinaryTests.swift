import Foundation
import Testing

@Suite struct BinaryTests {
    @Test func binaryIsBuiltNextToTheTests() {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // swift-testing and XCTest on Linux run from `.build/<config>/<name>PackageTests.xctest`.
        let candidates = [dir, dir.deletingLastPathComponent()].map { $0.appendingPathComponent("swiftproc").path }
        #expect(candidates.contains { FileManager.default.isExecutableFile(atPath: $0) })
    }
}
