"""Node IDs as the Scope probe writes them."""

from . import host


def host_node(hostname: str) -> str:
    return f"{hostname};<host>"


def this_host() -> str:
    """This host's node: `<hostname>;<host>`."""
    return host_node(host.hostname())


def container(container_id: str) -> str:
    return f"{container_id};<container>"


def container_id_of(node_id: str):
    """The container ID in a container node's ID, or None."""
    return node_id[: -len(";<container>")] if node_id.endswith(";<container>") else None


def container_image(image_name: str) -> str:
    return f"{image_name};<container_image>"


def process(hostname: str, pid: int) -> str:
    return f"{hostname};{pid}"


def pod(uid: str) -> str:
    return f"{uid};<pod>"
