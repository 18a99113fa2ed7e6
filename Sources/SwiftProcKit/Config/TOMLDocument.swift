import TOML

/// The one place the Config layer calls the TOML decoder: a syntax error keeps its location
/// and source line and gains the file's path.
func parseTOMLDocument(_ text: String, path: String) throws(ConfigError) -> TOMLTable {
    do {
        return try TOMLTable(parsing: text)
    } catch {
        throw .syntax(error, path: path)
    }
}
