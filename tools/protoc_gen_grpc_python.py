"""protoc plugin shim: runs the grpc_python generator compiled into grpcio-tools.

buf can run protoc's built-in generators (python, pyi) through grpcio-tools' protoc, but the
gRPC generator is not a protoc built-in, and grpcio-tools ships no standalone plugin binary. This
shim reads the CodeGeneratorRequest from buf, hands the same descriptors to grpcio-tools' protoc
with ``--descriptor_set_in``, and returns what it wrote as a CodeGeneratorResponse.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def main() -> int:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    response = plugin_pb2.CodeGeneratorResponse()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = pathlib.Path(tmp)
        fds = descriptor_pb2.FileDescriptorSet(file=list(request.proto_file))
        (tmp_path / "in.pb").write_bytes(fds.SerializeToString())
        out = tmp_path / "out"
        out.mkdir()
        args = ["protoc", f"--descriptor_set_in={tmp_path / 'in.pb'}", f"--grpc_python_out={out}"]
        if protoc.main([*args, *request.file_to_generate]) != 0:
            response.error = "grpc_tools.protoc failed"
        else:
            for path in sorted(out.rglob("*.py")):
                generated = response.file.add()
                generated.name = str(path.relative_to(out))
                generated.content = path.read_text()
    sys.stdout.buffer.write(response.SerializeToString())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
