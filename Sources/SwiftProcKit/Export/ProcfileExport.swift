/// `swiftproc export procfile`: `name: command` lines, the release command as `release:`.
///
/// A Procfile holds one command per line and names of letters, digits, `_` and `-`; a group
/// that cannot be written that way is left out with a warning rather than written wrong.
enum ProcfileExport {
    static func render(_ model: ExportModel) -> ExportResult {
        var warnings: [String] = []
        var text = Exporter.header(.procfile, model).map { "# " + $0 + "\n" }.joined()
        if !model.env.isEmpty {
            text += "# [env] is not part of a Procfile: put those variables in .env.\n"
        }
        func line(_ name: String, _ command: String) -> String? {
            guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0.isASCIILetter || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }) else {
                warnings.append("\(name): a Procfile name has only letters, digits, _ and -; left out")
                return nil
            }
            guard !command.contains(where: { $0.isNewline }) else {
                warnings.append("\(name): a Procfile command is one line; this one has line breaks, left out")
                return nil
            }
            return "\(name): \(command.trimmingCharacters(in: .whitespaces))\n"
        }
        if let release = model.releaseCommand, let l = line("release", release) { text += l }
        for g in model.groups {
            if g.name == "release" {
                warnings.append("release: a group with this name would be read as the release command; left out")
                continue
            }
            if let l = line(g.name, g.command) { text += l }
        }
        return ExportResult(files: [ExportFile(name: "Procfile", contents: text)], warnings: warnings)
    }
}
