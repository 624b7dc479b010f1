//! volume-count, ported from the official Scope plugin: the number of mounts
//! of every container (running or not), from the Docker Engine.

use scope_plugin::*;

#[derive(Default)]
struct VolumeCount;

impl Plugin for VolumeCount {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Volume Counts", "Shows how many volumes each container has mounted")
    }

    fn report(&mut self) -> Result<Report, String> {
        let containers = docker::containers(true).map_err(|e| format!("listing containers: {e}"))?;
        let mut topology = Topology::new(TopologyKind::Container)
            .metadata_template(MetadataTemplate::new("volume_count", "# Volumes").priority(0.1));
        for container in containers {
            let node = Node::new(ids::container(&container.id)).latest("volume_count", container.mounts.len().to_string());
            topology = topology.node(node);
        }
        Ok(Report::new().with(topology))
    }
}

export_plugin!(VolumeCount);
