/// `swiftproc help [COMMAND]`.
enum HelpCommand: Command {
    static let name = "help"
    static let summary = "Show help for swiftproc or one of its commands."
    static let usage = "[COMMAND]"
    static let options: [Option] = []

    static func run(_ arguments: ParsedArguments) async throws -> Int32 {
        guard let name = arguments.positionals.first else {
            print(mainHelp())
            return 0
        }
        guard let command = findCommand(name) else {
            throw Failure("swiftproc help: unknown command \"\(name)\". Run `swiftproc --help` for the list.", status: 2)
        }
        print(command.helpText, terminator: "")
        return 0
    }
}

/// `swiftproc version`.
enum VersionCommand: Command {
    static let name = "version"
    static let summary = "Print swiftproc's version."
    static let usage = ""
    static let options: [Option] = []

    static func run(_ arguments: ParsedArguments) async throws -> Int32 {
        print("swiftproc \(swiftprocVersion)")
        return 0
    }
}
