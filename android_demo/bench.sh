#!/usr/bin/env bash
# Per-stage on-device latency of a bundle with LiteRT's `benchmark_model` (the CompiledModel benchmark,
# litert/tools/benchmark_litert_model), over adb, on the NPU, the GPU and the CPU. Writes one JSON file.
#
#   android_demo/bench.sh BUNDLE_DIR --benchmark-binary PATH [options]
#
#   --benchmark-binary PATH  LiteRT's benchmark_model built for android_arm64 (required; pushed to the phone)
#   --out FILE               results file (default BUNDLE_DIR/../device_bench.json); refused if it exists
#   --overwrite              replace an existing results file
#   --stages a,b             stages to run (default: every stage of the manifest)
#   --accelerators npu,gpu,cpu   (default: all three, in that order)
#   --runs N --warmup N      timed and warm-up runs (default 50 and 5)
#   --npu-libs DIR           local folder with the NPU dispatch / compiler plugin libraries
#                            (libLiteRtDispatch_MediaTek.so, ...), pushed beside the models
#   --serial SERIAL          adb device serial (default: the only device)
#   ADB=...                  adb executable (default: adb)
#
# Each (stage, accelerator) runs with --require_full_delegation=true for the NPU and the GPU, so a row
# says `ok` only if the whole graph ran on that accelerator; otherwise the row is `failed` with the
# tool's last message. The NPU uses the bundle's MediaTek AOT export (target "tflite_mediatek") when
# the manifest has one, else the plain .tflite compiled on the device. A chunked UNet gives one row
# per chunk (stage "unet.chunk0", ...).
#
# Results (schema "i2v-adapter-android-bench/1"):
#   {"schema", "created" (UTC), "bundle", "preset", "device": {"model", "soc_manufacturer", "soc_model",
#    "android"}, "benchmark_binary", "num_runs", "warmup_runs",
#    "rows": [{"stage", "accelerator" (npu|gpu|cpu), "file", "status" (ok|failed),
#              "init_ms", "avg_ms", "min_ms", "max_ms", "peak_mem_mb" (null when not reported),
#              "error" (failed rows only)}]}
# Times are milliseconds as benchmark_model prints them ("Model initialization", "Inference (avg/min/max)",
# "Peak memory"). Flags and summary lines as in LiteRT's litert/tools/benchmark_litert_model.h (the same at
# tag v2.2.0 and on main, 2026-08-21); build it with Bazel: //litert/tools:benchmark_model, --config=android_arm64.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "error: $*" >&2; exit 2; }

bundle="" out="" overwrite=0 stages="" accels="npu,gpu,cpu" runs=50 warmup=5 binary="" npu_libs="" serial=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --overwrite) overwrite=1; shift ;;
        --stages) stages="$2"; shift 2 ;;
        --accelerators) accels="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        --benchmark-binary) binary="$2"; shift 2 ;;
        --npu-libs) npu_libs="$2"; shift 2 ;;
        --serial) serial="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [ -z "$bundle" ] || die "expected one BUNDLE_DIR, got '$bundle' and '$1'"; bundle="$1"; shift ;;
    esac
done
[ -n "$bundle" ] || { usage >&2; exit 2; }
[ -f "$bundle/manifest.json" ] || die "expected a bundle with manifest.json at $bundle, not found"
[ -n "$binary" ] || die "expected --benchmark-binary PATH (LiteRT's benchmark_model for android_arm64)"
[ -f "$binary" ] || die "benchmark binary not found at $binary"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "expected --runs to be a positive integer, got '$runs'"
[[ "$warmup" =~ ^[0-9]+$ ]] || die "expected --warmup to be a non-negative integer, got '$warmup'"
for a in ${accels//,/ }; do
    case "$a" in npu|gpu|cpu) ;; *) die "expected accelerators from npu,gpu,cpu, got '$a'" ;; esac
done
[ -z "$npu_libs" ] || [ -d "$npu_libs" ] || die "NPU library folder not found at $npu_libs"
out="${out:-$(dirname "$bundle")/device_bench.json}"
if [ -e "$out" ] && [ "$overwrite" -ne 1 ]; then die "$out exists (pass --overwrite to replace it)"; fi
command -v python3 >/dev/null || die "python3 is needed to read the manifest and write the results"

adb_cmd=("${ADB:-adb}")
[ -z "$serial" ] || adb_cmd+=(-s "$serial")
remote=/data/local/tmp/i2v_bench

# "stage<TAB>file" lines from the manifest: the plain tflite export and, for the NPU, the AOT one if any.
model_files() { # $1 target
    python3 - "$bundle/manifest.json" "$1" "$stages" <<'PY'
import json, sys
manifest, target, wanted = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
names = wanted.split(",") if wanted else list(manifest["stages"])
unknown = [n for n in names if n not in manifest["stages"]]
if unknown:
    sys.exit(f"error: unknown stages {unknown}; the bundle has {list(manifest['stages'])}")
for name in names:
    entry = manifest["stages"][name]["targets"].get(target)
    if entry is None:
        if target == "tflite":
            sys.exit(f"error: stage {name} has no tflite export; it has {list(manifest['stages'][name]['targets'])}")
        continue
    for chunk in entry.get("chunks") or [{"name": name, "file": entry["file"]}]:
        print(f"{chunk['name']}\t{chunk['file']}")
PY
}

# Parse benchmark_model's summary from a log on stdin into "init avg min max peak" (peak "null" if absent).
parse_log() {
    python3 -c '
import re, sys
log = sys.stdin.read()
def grab(label):
    m = re.findall(re.escape(label) + r":\s*([0-9.]+)", log)
    return m[-1] if m else None
vals = [grab(k) for k in ("Model initialization", "Inference (avg)", "Inference (min)", "Inference (max)")]
if None in vals:
    sys.exit(1)
peak = grab("Peak memory")
print(*vals, peak if peak is not None else "null")
'
}

device_prop() { "${adb_cmd[@]}" shell getprop "$1" 2>/dev/null | tr -d '\r'; }

"${adb_cmd[@]}" get-state >/dev/null 2>&1 || die "no adb device (${adb_cmd[*]} get-state failed)"
"${adb_cmd[@]}" shell mkdir -p "$remote" >/dev/null
"${adb_cmd[@]}" push "$binary" "$remote/benchmark_model" >/dev/null
"${adb_cmd[@]}" shell chmod 755 "$remote/benchmark_model" >/dev/null
if [ -n "$npu_libs" ]; then
    "${adb_cmd[@]}" push "$npu_libs/." "$remote/lib/" >/dev/null
fi

plain="$(model_files tflite)" || exit 2
aot="$(model_files tflite_mediatek)" || exit 2
rows="$(mktemp)"
trap 'rm -f "$rows"' EXIT
pushed=" "
while IFS=$'\t' read -r stage file; do
    for acc in ${accels//,/ }; do
        use="$file"
        if [ "$acc" = npu ]; then
            aot_file="$(printf '%s\n' "$aot" | awk -F'\t' -v s="$stage" '$1 == s {print $2}')"
            use="${aot_file:-$file}"
        fi
        case "$pushed" in *" $use "*) ;; *) "${adb_cmd[@]}" push "$bundle/$use" "$remote/$use" >/dev/null </dev/null; pushed="$pushed$use " ;; esac
        flags="--graph=$remote/$use --num_runs=$runs --warmup_runs=$warmup"
        case "$acc" in
            npu) flags="$flags --use_npu=true --use_cpu=false --require_full_delegation=true"
                 flags="$flags --dispatch_library_path=$remote/lib --compiler_plugin_library_path=$remote/lib" ;;
            gpu) flags="$flags --use_gpu=true --use_cpu=false --require_full_delegation=true" ;;
            cpu) flags="$flags --use_cpu=true" ;;
        esac
        echo "benchmarking $stage on $acc ($use)" >&2
        log="$("${adb_cmd[@]}" shell "cd $remote && LD_LIBRARY_PATH=$remote/lib:$remote ./benchmark_model $flags" </dev/null 2>&1 | tr -d '\r')" || true
        if values="$(printf '%s' "$log" | parse_log)"; then
            printf 'ok\t%s\t%s\t%s\t%s\n' "$stage" "$acc" "$use" "$values" >>"$rows"
        else
            printf 'failed\t%s\t%s\t%s\t%s\n' "$stage" "$acc" "$use" "$(printf '%s' "$log" | tail -n 3 | tr '\t\n' '  ')" >>"$rows"
        fi
    done
done <<<"$plain"

python3 - "$rows" "$out" "$bundle" "$binary" "$runs" "$warmup" \
    "$(device_prop ro.product.model)" "$(device_prop ro.soc.manufacturer)" "$(device_prop ro.soc.model)" \
    "$(device_prop ro.build.version.release)" <<'PY'
import datetime, json, os, sys
rows_path, out, bundle, binary, runs, warmup, model, soc_maker, soc, android = sys.argv[1:]
manifest = json.load(open(os.path.join(bundle, "manifest.json")))
rows = []
for line in open(rows_path):
    status, stage, acc, file, rest = line.rstrip("\n").split("\t", 4)
    row = {"stage": stage, "accelerator": acc, "file": file, "status": status}
    if status == "ok":
        init, avg, lo, hi, peak = rest.split()
        row.update(init_ms=float(init), avg_ms=float(avg), min_ms=float(lo), max_ms=float(hi),
                   peak_mem_mb=None if peak == "null" else float(peak))
    else:
        row.update(init_ms=None, avg_ms=None, min_ms=None, max_ms=None, peak_mem_mb=None, error=rest.strip())
    rows.append(row)
result = {
    "schema": "i2v-adapter-android-bench/1",
    "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "bundle": os.path.abspath(bundle),
    "preset": manifest["preset"]["name"],
    "device": {"model": model, "soc_manufacturer": soc_maker, "soc_model": soc, "android": android},
    "benchmark_binary": os.path.basename(binary),
    "num_runs": int(runs),
    "warmup_runs": int(warmup),
    "rows": rows,
}
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
os.replace(tmp, out)
ok = sum(r["status"] == "ok" for r in rows)
print(f"wrote {out}: {ok} ok, {len(rows) - ok} failed of {len(rows)} (stage, accelerator) rows")
PY
