"""Protobuf message classes from hand-written descriptors: no generated code in the tree.

The wire formats Watchkeeper speaks (remote write/read, the protobuf exposition format)
are small and stable; describing their messages here keeps `make test` free of a protoc
step and lets each codec read exactly the fields it needs.

Example:
    >>> proto = ProtoFile("example.proto", "example")
    >>> proto.message("Pair", ("name", 1, OPTIONAL, STRING, ""), ("value", 2, OPTIONAL, DOUBLE, ""))
    >>> Pair = proto.classes()["Pair"]
    >>> Pair.FromString(Pair(name="x", value=1.5).SerializeToString()).value
    1.5
"""

from __future__ import annotations

from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
OPTIONAL: Final = _F.LABEL_OPTIONAL
REPEATED: Final = _F.LABEL_REPEATED
MESSAGE: Final = _F.TYPE_MESSAGE
STRING: Final = _F.TYPE_STRING
BYTES: Final = _F.TYPE_BYTES
BOOL: Final = _F.TYPE_BOOL
DOUBLE: Final = _F.TYPE_DOUBLE
INT32: Final = _F.TYPE_INT32
INT64: Final = _F.TYPE_INT64
UINT32: Final = _F.TYPE_UINT32
UINT64: Final = _F.TYPE_UINT64
SINT32: Final = _F.TYPE_SINT32
SINT64: Final = _F.TYPE_SINT64

Field = tuple[str, int, int, int, str]
"""(name, number, label, type, message type name): the name is relative to the package
unless it starts with "." (a fully qualified name such as ".google.protobuf.Timestamp")."""


class ProtoFile:
    """One .proto file described in code; `classes()` builds its message classes."""

    def __init__(
        self,
        name: str,
        package: str,
        *,
        syntax: str = "proto3",
        dependencies: tuple[Any, ...] = (),
    ) -> None:
        """`dependencies` are the generated modules' file DESCRIPTORs the file refers to."""
        self.package = package
        self._deps = []
        for dep in dependencies:
            dep_proto = descriptor_pb2.FileDescriptorProto()
            dep.CopyToProto(dep_proto)
            self._deps.append(dep_proto)
        self._file = descriptor_pb2.FileDescriptorProto(
            name=name,
            package=package,
            syntax=syntax,
            dependency=[d.name for d in self._deps],
        )

    def message(self, name: str, *fields: Field) -> None:
        """Adds a message type with the given fields."""
        m = self._file.message_type.add(name=name)
        for fname, number, label, ftype, tname in fields:
            fd = m.field.add(name=fname, number=number, label=label, type=ftype)
            if tname:
                fd.type_name = tname if tname.startswith(".") else f".{self.package}.{tname}"

    def classes(self) -> dict[str, Any]:
        """The message classes by short name."""
        pool = descriptor_pool.DescriptorPool()
        for dep in self._deps:
            pool.Add(dep)
        pool.Add(self._file)
        return {
            m.name: message_factory.GetMessageClass(
                pool.FindMessageTypeByName(f"{self.package}.{m.name}")
            )
            for m in self._file.message_type
        }
