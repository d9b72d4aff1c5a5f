# JSON on standard input -> one line per scalar: PATH<TAB>VALUE, PATH the keys and array indices
# joined by dots (containerSet.containers.0.name). Strings are unescaped (\uXXXX becomes "?").
# Enough for the templates Argo's controller writes (compact JSON from Go's encoding/json).
BEGIN { RS = "\001" }
{ s = $0; n = length(s); i = 1; value("") }
function ws() { while (i <= n && index(" \t\r\n", substr(s, i, 1))) i++ }
function join(p, k) { return p == "" ? k : p "." k }
function value(path,    c, k, idx, start) {
  ws(); c = substr(s, i, 1)
  if (c == "{") {
    i++; ws()
    if (substr(s, i, 1) == "}") { i++; return }
    while (i <= n) {
      ws(); k = str(); ws(); i++          # the key, then ':'
      value(join(path, k)); ws()
      c = substr(s, i, 1); i++            # ',' or '}'
      if (c == "}") return
    }
  } else if (c == "[") {
    i++; ws()
    if (substr(s, i, 1) == "]") { i++; return }
    idx = 0
    while (i <= n) {
      value(join(path, idx)); idx++; ws()
      c = substr(s, i, 1); i++            # ',' or ']'
      if (c == "]") return
    }
  } else if (c == "\"") {
    printf "%s\t%s\n", path, str()
  } else {
    start = i
    while (i <= n && !index(",}] \t\r\n", substr(s, i, 1))) i++
    printf "%s\t%s\n", path, substr(s, start, i - start)
  }
}
function str(    out, c) {
  i++; out = ""
  while (i <= n) {
    c = substr(s, i, 1)
    if (c == "\\") {
      c = substr(s, i + 1, 1); i += 2
      if (c == "n") out = out "\n"; else if (c == "t") out = out "\t"
      else if (c == "u") { out = out "?"; i += 4 } else out = out c
      continue
    }
    i++
    if (c == "\"") return out
    out = out c
  }
  return out
}
