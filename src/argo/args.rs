//! ARGO_CONTAINER_ARGS_FILE: the container's arguments that the controller offloaded to a ConfigMap
//! (over 128 KiB of JSON), added to the command as Argo's emissary adds them.

use std::ffi::OsString;
use std::path::Path;

use super::files;

/// Arguments longer than this go to a file (`@/tmp/argo_arg_<i>.txt`), as Argo passes them.
const MAX_ARG: usize = 131072;

/// ARGO_CONTAINER_ARGS_FILE: the controller offloaded the container's args (over 128 KiB of JSON) to
/// a configmap; they follow the command. An argument too long for exec goes to a file in `tmp` and
/// is passed as `@file`, as Argo passes it.
pub fn add_offloaded_args(command: &mut Vec<OsString>, tmp: &Path) -> Result<(), String> {
    let Some(path) = std::env::var_os("ARGO_CONTAINER_ARGS_FILE").filter(|p| !p.is_empty()) else { return Ok(()) };
    let path = Path::new(&path);
    let json =
        files::read_config(path, 4 << 20).and_then(|j| j.ok_or_else(|| std::io::ErrorKind::NotFound.into())).map_err(
            |e| format!("cannot read the container's arguments from ARGO_CONTAINER_ARGS_FILE={}: {e}", path.display()),
        )?;
    // Through serde_json::Value, which baton already carries (no code for a typed Vec<String>).
    let not_args =
        |why: String| format!("ARGO_CONTAINER_ARGS_FILE={} is not a JSON array of strings ({why})", path.display());
    let args = match serde_json::from_slice::<serde_json::Value>(&json).map_err(|e| not_args(e.to_string()))? {
        serde_json::Value::Array(args) => args,
        _ => return Err(not_args("not an array".into())),
    };
    for arg in args {
        let serde_json::Value::String(arg) = arg else { return Err(not_args(format!("{arg} is not a string"))) };
        command.push(OsString::from(arg));
    }
    // Numbered as Argo numbers them: from 0, the first argument after the program (never offloaded).
    for (i, arg) in command.iter_mut().skip(1).enumerate() {
        if arg.len() > MAX_ARG {
            let file = tmp.join(format!("argo_arg_{i}.txt"));
            crate::folder::create_atomically(&file, 0o644, |f| std::io::Write::write_all(f, arg.as_encoded_bytes()))
                .map_err(|e| format!("cannot write argument {i} to {}: {e}", file.display()))?;
            let mut at = OsString::from("@");
            at.push(&file);
            *arg = at;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offloaded_args_follow_the_command_and_long_ones_go_to_files() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("ARGO_CONTAINER_ARGS_FILE");
        let long = "x".repeat(MAX_ARG + 1);
        std::fs::write(&json, serde_json::to_vec(&["-c", long.as_str()]).unwrap()).unwrap();
        std::env::set_var("ARGO_CONTAINER_ARGS_FILE", &json);
        let mut command = vec![OsString::from("sh")];
        let added = add_offloaded_args(&mut command, dir.path());
        std::env::remove_var("ARGO_CONTAINER_ARGS_FILE");
        added.unwrap();
        let file = dir.path().join("argo_arg_1.txt");
        assert_eq!(command, [OsString::from("sh"), "-c".into(), format!("@{}", file.display()).into()]);
        assert_eq!(std::fs::read_to_string(file).unwrap(), long);
    }
}
