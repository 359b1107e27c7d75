# Sourced by the scripts that need a Python tool: `ensure_venv DIR FILE`
# creates (or recreates, when FILE changed) the virtualenv DIR with the
# pinned requirements FILE.
ensure_venv() {
  local dir=$1 requirements=$2 want have=""
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  [[ -f "$dir/.requirements.sha256" ]] && have=$(cat "$dir/.requirements.sha256")
  if [[ -x "$dir/bin/python" && "$have" == "$want" ]]; then
    return 0
  fi
  echo "installing $requirements into $dir/ (once)" >&2
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" > "$dir/.requirements.sha256"
}
