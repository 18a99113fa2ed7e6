import Foundation
import Testing
@testable import SwiftProcKit

@Suite struct ControlMessagesTests {
    @Test func requestRoundTripsThroughJSON() throws {
        let r = ControlRequest(command: .scale, arguments: ["worker=3", "app=+1"])
        let data = try JSONEncoder().encode(r)
        #expect(try JSONDecoder().decode(ControlRequest.self, from: data) == r)
    }
}
