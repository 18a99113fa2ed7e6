import Testing
@testable import SwiftProcKit

@Suite struct ConfigFormationTests {
    let known = ["web", "worker", "clock"]

    @Test func commaSpaceAndSeveralWords() throws {
        let a = try Formation.parse(["web=3,worker=2"], known: known)
        let b = try Formation.parse(["web=3 worker=2"], known: known)
        let c = try Formation.parse(["web=3", "worker=2"], known: known)
        #expect(a == b && b == c)
        #expect(a.entries == [.init(group: "web", count: 3), .init(group: "worker", count: 2), .init(group: "clock", count: 0)])
        #expect(a.description == "web=3,worker=2,clock=0")
        #expect(a.total == 5)
    }

    @Test func allSetsEveryGroupAndSpecificOverrides() throws {
        #expect(try Formation.parse(["all=2"], known: known).entries.map(\.count) == [2, 2, 2])
        #expect(try Formation.parse(["all=2,clock=0"], known: known).entries.map(\.count) == [2, 2, 0])
        #expect(try Formation.parse([], known: known) == .oneOfEach(known))
    }

    @Test func zeroIsAllowed() throws {
        #expect(try Formation.parse(["web=0"], known: known)["web"] == 0)
    }

    @Test func negativeNonNumericAndRelativeAreErrorsListingKnownNames() {
        let negative = configError { _ = try Formation.parse(["web=-1"], known: known) }
        #expect(negative == .invalidFormation(word: "web=-1", reason: "a count cannot be negative", known: known))
        #expect(negative?.rendered == "invalid formation \"web=-1\": a count cannot be negative (known: web, worker, clock)")
        let word = configError { _ = try Formation.parse(["web=two"], known: known) }
        #expect(word == .invalidFormation(word: "web=two", reason: "the count must be a whole number ≥ 0", known: known))
        let relative = configError { _ = try Formation.parse(["web=+1"], known: known) }
        #expect(relative?.message.contains("relative count") == true)
        #expect(configError { _ = try Formation.parse(["web"], known: known) }?.message.contains("expected name=count") == true)
    }

    @Test func unknownNameSuggestsTheClosest() {
        let error = configError { _ = try Formation.parse(["wrker=2"], known: known) }
        #expect(error == .unknownProcess("wrker", suggestions: ["worker"], known: known))
        #expect(error?.rendered == "unknown process group \"wrker\"; did you mean \"worker\"? (known: web, worker, clock)")
        #expect(configError { _ = try Formation.parse(["zzzzzz=1"], known: known) }
                == .unknownProcess("zzzzzz", suggestions: [], known: known))
    }

    @Test func relativeChangesNeverGoBelowZero() throws {
        let current = try Formation.parse(["web=2,worker=1"], known: known)
        let change = try FormationChange.parse(["worker=+2", "web=-5", "clock=1"], known: known)
        #expect(change.items == [.init(group: "worker", adjustment: .add(2)), .init(group: "web", adjustment: .add(-5)),
                                 .init(group: "clock", adjustment: .set(1))])
        let next = change.applied(to: current)
        #expect(next.entries.map(\.count) == [0, 3, 1])
    }

    @Test func changeAcceptsAllAndABareCountForTheDefaultGroup() throws {
        let current = Formation.oneOfEach(known)
        #expect(try FormationChange.parse(["all=+1"], known: known).applied(to: current).entries.map(\.count) == [2, 2, 2])
        #expect(try FormationChange.parse(["3"], known: known, defaultGroup: "web").applied(to: current)["web"] == 3)
        #expect(configError { _ = try FormationChange.parse(["3"], known: known) } != nil)
        #expect(configError { _ = try FormationChange.parse(["web=+x"], known: known) } != nil)
        #expect(configError { _ = try FormationChange.parse([], known: known) } != nil)
        #expect(configError { _ = try FormationChange.parse(["wbe=+1"], known: known) }
                == .unknownProcess("wbe", suggestions: ["web"], known: known))
    }

    @Test func foremanPorts() {
        let plan = PortPlan(groups: ["web", "worker"])
        #expect(plan.port(group: "web", instance: 1) == 5000)
        #expect(plan.port(group: "web", instance: 2) == 5001)
        #expect(plan.port(group: "worker", instance: 1) == 5100)
        #expect(plan.port(group: "nope", instance: 1) == nil)
        #expect(PortPlan(base: 3000, groups: ["a", "b", "c"]).ports(group: "c", count: 3) == [3200, 3201, 3202])
        #expect(PortPlan.port(base: 5000, groupPosition: 1, instance: 3) == 5102)
    }

    @Test func editDistance() {
        #expect(Suggestions.editDistance("kitten", "sitting") == 3)
        #expect(Suggestions.editDistance("", "abc") == 3)
        #expect(Suggestions.closest(to: "WEB", among: ["web", "worker"]) == ["web"])
    }
}
