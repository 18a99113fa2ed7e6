/// Quoting for systemd unit files and environment files.
///
/// systemd reads an `ExecStart=` word or an `Environment=` assignment with C-style escapes
/// inside double quotes, then expands `%` specifiers (`%%` is a literal `%`); `ExecStart=`
/// also substitutes `$VAR` (`$$` is a literal `$`), `Environment=` does not.
public enum SystemdUnit {
    /// A double-quoted `ExecStart=` argument that systemd hands to the program as `text`.
    public static func execArgument(_ text: String) -> String {
        quoted(text, dollars: true)
    }

    /// `Environment="NAME=value"`'s quoted part.
    public static func environmentAssignment(name: String, value: String) -> String {
        quoted(name + "=" + value, dollars: false)
    }

    /// A value for a setting that takes the rest of the line with specifiers expanded
    /// (`Description=`, `WorkingDirectory=`, `EnvironmentFile=`): `%` doubled, line breaks spaced.
    public static func plainValue(_ text: String) -> String {
        oneLine(text).replacingOccurrences(of: "%", with: "%%")
    }

    private static func quoted(_ text: String, dollars: Bool) -> String {
        var out = "\""
        for s in text.unicodeScalars {
            switch s {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "%": out += "%%"
            case "$" where dollars: out += "$$"
            default:
                if s.value < 0x20 || s.value == 0x7F { out += "\\x" + hex2(s.value) } else { out.unicodeScalars.append(s) }
            }
        }
        return out + "\""
    }

    /// One line of an `EnvironmentFile=`: `NAME="value"`, where systemd's parser undoes
    /// `\\`, `\"`, `` \` `` and `\$` inside double quotes and keeps line breaks.
    public static func environmentFileLine(name: String, value: String) -> String {
        var out = name + "=\""
        for c in value.unicodeScalars {
            if "\\\"`$".unicodeScalars.contains(c) { out += "\\" }
            out.unicodeScalars.append(c)
        }
        return out + "\"\n"
    }
}
