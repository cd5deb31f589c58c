"""What each command does, below both faces of the tool: the CLI (`cli`, which parses and
prints) and the Python API (`api`, which returns the stored run).  Options arrive as the
namespace `options.parser()` makes; each `start*` function checks them, runs, stores the run
and returns it with its directory."""
