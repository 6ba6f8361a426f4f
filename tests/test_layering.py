"""The house rules of the import structure, read from the code (ast): inference, export, the
command line and the service never import the training module; the alphabets (`crnn_jax.text`)
are the ground floor and import nothing else of crnn_jax; the synthetic text engine
(`crnn_jax.synth`) stands on them alone: it never imports the input pipeline, training,
evaluation or inference code; the input pipeline (`crnn_jax.data`) imports the engine only
where it builds a synthetic dataset, and never the evaluation; no two modules import each other
(directly or through a loop)."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "crnn_jax"
TRAINING = "crnn_jax.train_lib"


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path) -> set[str]:
  """Every crnn_jax module the file imports, at any depth of the file (lazy imports too)."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      found.add(node.module)
      found.update(f"{node.module}.{alias.name}" for alias in node.names)
  return {name for name in found if name.startswith("crnn_jax")}


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: {m for m in _imports(path) if m in MODULES and m != name}
         for name, path in MODULES.items()}


@pytest.mark.parametrize("name", sorted(
    n for n in MODULES if n.startswith(("crnn_jax.cli", "crnn_jax.serve", "crnn_jax.evaluation",
                                        "crnn_jax.decoding", "crnn_jax.inference"))
    or n in ("crnn_jax.export", "crnn_jax.onnx_backend",
             "crnn_jax.quantize", "crnn_jax.pretrained", "crnn_jax.run_files")))
def test_inference_side_never_imports_the_training_module(name):
  assert TRAINING not in GRAPH[name], f"{MODULES[name]} imports {TRAINING}"


# Where the input pipeline builds a synthetic dataset: the only data modules that import synth.
DATA_USING_SYNTH = ("crnn_jax.data.pipeline", "crnn_jax.data.builders.synthetic")
# What the engine must not reach: the input pipeline above it, training, evaluation, decoding,
# inference and what serves them.
NOT_FOR_SYNTH = ("crnn_jax.data", "crnn_jax.train_lib", "crnn_jax.checkpointing",
                 "crnn_jax.evaluation", "crnn_jax.decoding", "crnn_jax.inference",
                 "crnn_jax.serve", "crnn_jax.cli", "crnn_jax.export", "crnn_jax.pretrained",
                 "crnn_jax.run_files", "crnn_jax.samples")


def _under(module: str, packages) -> bool:
  return any(module == p or module.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _under(n, ["crnn_jax.text"])))
def test_alphabets_import_nothing_of_the_package(name):
  bad = sorted(m for m in GRAPH[name] if not _under(m, ["crnn_jax.text"]))
  assert not bad, f"{MODULES[name]} imports {bad}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("crnn_jax.synth")))
def test_synth_never_imports_training_evaluation_or_inference(name):
  bad = sorted(m for m in GRAPH[name] if _under(m, NOT_FOR_SYNTH))
  assert not bad, f"{MODULES[name]} imports {bad}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("crnn_jax.data")))
def test_data_imports_synth_only_where_it_builds_a_synthetic_dataset(name):
  synth = sorted(m for m in GRAPH[name] if m.startswith("crnn_jax.synth"))
  assert not synth or name in DATA_USING_SYNTH, f"{MODULES[name]} imports {synth}"


# Above the input pipeline: what scores a model (the held-out sets' writers and scorers included),
# and what looks at the data (the contact sheet, the figures).
NOT_FOR_DATA = ("crnn_jax.evaluation", "crnn_jax.samples", "crnn_jax.visualize")


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _under(n, ["crnn_jax.data"])))
def test_data_never_imports_evaluation_or_what_looks_at_it(name):
  bad = sorted(m for m in GRAPH[name] if _under(m, NOT_FOR_DATA))
  assert not bad, f"{MODULES[name]} imports {bad}"


def test_no_import_cycles():
  # Package faces (__init__.py that hand names on) are left out: importing a package runs them.
  graph = {n: {m for m in deps if not MODULES[m].name == "__init__.py"}
           for n, deps in GRAPH.items() if MODULES[n].name != "__init__.py"}
  state, cycles = {}, []

  def visit(node, stack):
    state[node] = "open"
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == "open":
        cycles.append(stack[stack.index(nxt):] + [nxt])
      elif nxt not in state:
        visit(nxt, stack + [nxt])
    state[node] = "done"

  for node in sorted(graph):
    if node not in state:
      visit(node, [node])
  assert not cycles, f"import cycles: {cycles}"


def test_the_graph_sees_imports():  # The checks above would pass on an empty graph.
  assert "crnn_jax.synth.source_zh" in GRAPH["crnn_jax.synth.sources"]
  assert "crnn_jax.pretrained" in GRAPH["crnn_jax.run_files"]
  assert "crnn_jax.text.charset" in GRAPH["crnn_jax.synth.sources"]
  assert "crnn_jax.evaluation.protocol" in GRAPH["crnn_jax.evaluation.heldout_zh"]
