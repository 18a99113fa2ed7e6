import Foundation
import Testing

/// The command line itself: help, version, mistakes.
@Suite(.serialized) struct CLITests {
    let here = FileManager.default.temporaryDirectory

    @Test func helpAndVersion() async throws {
        let help = try await runSwiftProc(["--help"], in: here)
        #expect(help.status == 0)
        for command in ["start", "check", "scale", "status", "logs", "restart", "stop"] {
            #expect(help.out.contains("\n  \(command) "), "\(command) missing from --help")
        }
        let version = try await runSwiftProc(["--version"], in: here)
        #expect(version.status == 0 && version.out.hasPrefix("swiftproc "))
        let helpCheck = try await runSwiftProc(["help", "check"], in: here)
        let checkHelp = try await runSwiftProc(["check", "--help"], in: here)
        #expect(helpCheck.status == 0 && checkHelp.status == 0)
        #expect(helpCheck.out == checkHelp.out)
        #expect(checkHelp.out.contains("USAGE: swiftproc check") && checkHelp.out.contains("--show-env"))
        for command in ["start", "scale", "status", "ps", "logs", "restart", "stop"] {
            let r = try await runSwiftProc([command, "-h"], in: here)
            #expect(r.status == 0 && r.out.contains("USAGE: swiftproc "), "\(command) -h")
        }
    }

    @Test func mistakesGetOneLineAndAHint() async throws {
        let typo = try await runSwiftProc(["strat"], in: here)
        #expect(typo.status == 2)
        #expect(typo.err.contains("Did you mean `swiftproc start`?"), "\(typo.err)")
        let option = try await runSwiftProc(["start", "--formaton", "app=2"], in: here)
        #expect(option.status == 2)
        #expect(option.err.contains("unknown option --formaton (did you mean --formation?)"), "\(option.err)")
        let missing = try await runSwiftProc(["logs", "-n"], in: here)
        #expect(missing.status == 2)
        #expect(missing.err.contains("-n needs a value"), "\(missing.err)")
        let badCount = try await runSwiftProc(["logs", "-n", "many"], in: here)
        #expect(badCount.status == 2)
        #expect(!typo.err.contains("Fatal error") && !option.err.contains("Fatal error"))
    }
}
