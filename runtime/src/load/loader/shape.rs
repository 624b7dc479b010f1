//! Structural limits a plugin file must meet before it reaches the compiler.
//!
//! Cranelift and wasmtime's component translation spend time and memory out of
//! all proportion on some small files: components nested thousands deep, one
//! function of 100,000 nested blocks, a few components that instantiate each
//! other into millions of instances. One pass over the file (no validation, no
//! allocation that grows with nesting beyond the limits) refuses those in
//! milliseconds, with the cause in words. The compile child's rlimits remain the
//! bound for whatever this pass does not foresee.

use anyhow::{Result, bail};
use wasmparser::{
    BinaryReader, ComponentAlias, ComponentExternalKind, ComponentInstance, ComponentOuterAliasKind, ComponentTypeRef,
    Encoding, Instance, Operator, Parser, Payload,
};

/// What a plugin file may contain. The defaults leave several times the
/// headroom the bundled plugins need (the CPython and StarlingMonkey
/// interpreters are the largest: see `docs/operators.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapeLimits {
    /// Components and modules inside components, the outermost counting 1.
    pub component_depth: usize,
    /// Blocks, loops, ifs and trys nested in one function.
    pub control_depth: usize,
    /// Functions with a body, in all modules together.
    pub functions: usize,
    /// Bytes of one function body.
    pub function_bytes: usize,
    /// Core module instances once every component instantiation is expanded,
    /// as wasmtime does when it translates a component.
    pub instances: u64,
}

impl Default for ShapeLimits {
    fn default() -> Self {
        Self { component_depth: 16, control_depth: 5_000, functions: 200_000, function_bytes: 4 << 20, instances: 10_000 }
    }
}

/// What one pass found (for the log and the tests); only what was read before
/// a limit was hit counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    pub component_depth: usize,
    pub control_depth: usize,
    pub functions: usize,
    pub largest_function: usize,
    pub instances: u64,
}

/// One component being read: the expanded instance count of each entry of its
/// component index space, and of the instances it creates itself.
#[derive(Default)]
struct Scope {
    is_component: bool,
    components: Vec<u64>,
    instances: u64,
}

/// Checks `bytes` against `limits`. Bytes the parser cannot read pass: the
/// compiler then refuses them with its own, better, message.
pub fn check(bytes: &[u8], limits: &ShapeLimits) -> Result<Shape> {
    let mut shape = Shape::default();
    let mut scopes: Vec<Scope> = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { return Ok(shape) };
        match payload {
            Payload::Version { encoding, .. } => {
                scopes.push(Scope { is_component: encoding == Encoding::Component, ..Scope::default() });
                shape.component_depth = shape.component_depth.max(scopes.len());
            }
            Payload::ModuleSection { unchecked_range: range, .. }
            | Payload::ComponentSection { unchecked_range: range, .. }
                if scopes.len() + 1 > limits.component_depth =>
            {
                let depth = scopes.len() + nesting_below(&bytes[range]);
                bail!("components nested {depth} deep; the limit is {}", limits.component_depth);
            }
            Payload::End(_) => {
                let Some(done) = scopes.pop() else { break };
                let Some(parent) = scopes.last_mut() else {
                    check_instances(&done, limits)?;
                    shape.instances = done.instances;
                    break;
                };
                // A core module is no entry of the component index space.
                if done.is_component {
                    check_instances(&done, limits)?;
                    parent.components.push(done.instances);
                }
            }
            Payload::InstanceSection(reader) => {
                let Some(scope) = scopes.last_mut() else { break };
                for instance in reader.into_iter().flatten() {
                    if let Instance::Instantiate { .. } = instance {
                        scope.instances = scope.instances.saturating_add(1);
                    }
                }
            }
            Payload::ComponentInstanceSection(reader) => {
                let Some(scope) = scopes.last_mut() else { break };
                for instance in reader.into_iter().flatten() {
                    if let ComponentInstance::Instantiate { component_index, .. } = instance {
                        let expanded = scope.components.get(component_index as usize).copied().unwrap_or(1);
                        scope.instances = scope.instances.saturating_add(expanded);
                    }
                }
            }
            Payload::ComponentImportSection(reader) => {
                let Some(scope) = scopes.last_mut() else { break };
                for import in reader.into_iter().flatten() {
                    if let ComponentTypeRef::Component(_) = import.ty {
                        scope.components.push(1);
                    }
                }
            }
            Payload::ComponentAliasSection(reader) => {
                for alias in reader.into_iter().flatten() {
                    let expanded = match alias {
                        ComponentAlias::InstanceExport { kind: ComponentExternalKind::Component, .. } => 1,
                        ComponentAlias::Outer { kind: ComponentOuterAliasKind::Component, count, index } => scopes
                            .len()
                            .checked_sub(1 + count as usize)
                            .and_then(|outer| scopes[outer].components.get(index as usize).copied())
                            .unwrap_or(1),
                        _ => continue,
                    };
                    if let Some(scope) = scopes.last_mut() {
                        scope.components.push(expanded);
                    }
                }
            }
            Payload::ComponentExportSection(reader) => {
                let Some(scope) = scopes.last_mut() else { break };
                for export in reader.into_iter().flatten() {
                    if export.kind == ComponentExternalKind::Component {
                        let expanded = scope.components.get(export.index as usize).copied().unwrap_or(1);
                        scope.components.push(expanded);
                    }
                }
            }
            Payload::CodeSectionStart { count, .. } => {
                shape.functions = shape.functions.saturating_add(count as usize);
                if shape.functions > limits.functions {
                    bail!("{} functions or more; the limit is {}", shape.functions, limits.functions);
                }
            }
            Payload::CodeSectionEntry(body) => {
                let size = body.range().len();
                shape.largest_function = shape.largest_function.max(size);
                if size > limits.function_bytes {
                    bail!("a function of {} KiB; the limit is {} KiB", size >> 10, limits.function_bytes >> 10);
                }
                let Ok(depth) = control_depth(&body) else { return Ok(shape) };
                shape.control_depth = shape.control_depth.max(depth);
                if depth > limits.control_depth {
                    bail!("blocks nested {depth} deep in one function; the limit is {}", limits.control_depth);
                }
            }
            _ => {}
        }
    }
    Ok(shape)
}

/// Checked once a component is read whole: what one instantiation of it expands to.
fn check_instances(component: &Scope, limits: &ShapeLimits) -> Result<()> {
    if component.instances > limits.instances {
        bail!(
            "its components instantiate each other into {} module instances; the limit is {}",
            component.instances,
            limits.instances
        );
    }
    Ok(())
}

/// The deepest nesting of blocks in a function body. Reading past the limit to
/// the end costs nothing more than the body's size, already bounded.
fn control_depth(body: &wasmparser::FunctionBody<'_>) -> wasmparser::Result<usize> {
    let mut reader = body.get_operators_reader()?;
    let (mut depth, mut deepest) = (0usize, 0usize);
    while !reader.eof() {
        match reader.read()? {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Try { .. }
            | Operator::TryTable { .. } => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            Operator::End => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(deepest)
}

/// How many levels of components or modules `bytes` (one of them) holds,
/// following the first nested one at each level and reading section headers
/// only: a count for the error message that allocates nothing.
fn nesting_below(mut bytes: &[u8]) -> usize {
    const CORE_MODULE: u8 = 1;
    const COMPONENT: u8 = 4;
    let mut levels = 1;
    loop {
        // A core module (layer 0) holds no modules or components.
        if bytes.len() < 8 || bytes[6..8] != [1, 0] {
            return levels;
        }
        let mut reader = BinaryReader::new(&bytes[8..], 0);
        let nested = loop {
            let (Ok(id), Ok(size)) = (reader.read_u8(), reader.read_var_u32()) else { return levels };
            let Ok(section) = reader.read_bytes(size as usize) else { return levels };
            if id == CORE_MODULE || id == COMPONENT {
                break section;
            }
        };
        levels += 1;
        bytes = nested;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREAMBLE: &[u8] = b"\0asm\x0d\0\x01\0";

    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn section(id: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![id];
        leb(body.len(), &mut out);
        out.extend_from_slice(body);
        out
    }

    fn nested_components(depth: usize) -> Vec<u8> {
        let mut component = PREAMBLE.to_vec();
        for _ in 1..depth {
            let mut outer = PREAMBLE.to_vec();
            outer.extend(section(4, &component));
            component = outer;
        }
        component
    }

    /// A component holding one core module with one function of `depth` nested blocks.
    fn nested_blocks(depth: usize) -> Vec<u8> {
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend(section(1, &[1, 0x60, 0, 0])); // one type: [] -> []
        module.extend(section(3, &[1, 0])); // one function of type 0
        let mut body = vec![0]; // no locals
        for _ in 0..depth {
            body.extend([0x02, 0x40]); // block (empty type)
        }
        body.extend(std::iter::repeat_n(0x0b, depth + 1));
        let mut code = vec![1];
        leb(body.len(), &mut code);
        code.extend(body);
        module.extend(section(10, &code));
        let mut component = PREAMBLE.to_vec();
        component.extend(section(1, &module));
        component
    }

    #[test]
    fn deep_components_are_refused_with_their_depth() {
        let limits = ShapeLimits::default();
        assert_eq!(check(&nested_components(16), &limits).unwrap().component_depth, 16);
        let err = check(&nested_components(10_000), &limits).unwrap_err();
        assert_eq!(err.to_string(), "components nested 10000 deep; the limit is 16");
    }

    #[test]
    fn deep_blocks_are_refused_with_their_depth() {
        let limits = ShapeLimits::default();
        let shape = check(&nested_blocks(1_000), &limits).unwrap();
        assert_eq!((shape.control_depth, shape.functions), (1_000, 1));
        let err = check(&nested_blocks(100_000), &limits).unwrap_err();
        assert_eq!(err.to_string(), "blocks nested 100000 deep in one function; the limit is 5000");
    }

    #[test]
    fn instantiation_fan_out_is_expanded() {
        // Each level instantiates the one before it 10 times: 10^5 instances in
        // a few hundred bytes of text.
        let mut wat = String::from("(component (component $c0 (core module $m) (core instance (instantiate $m)))");
        for level in 1..=5 {
            wat.push_str(&format!("(component $c{level}"));
            wat.push_str(&format!("(alias outer 1 $c{} (component $inner))", level - 1));
            for _ in 0..10 {
                wat.push_str("(instance (instantiate $inner))");
            }
            wat.push(')');
        }
        wat.push_str("(instance (instantiate $c5)))");
        let bytes = wat::parse_str(&wat).unwrap();
        let err = check(&bytes, &ShapeLimits::default()).unwrap_err();
        assert!(err.to_string().contains("instantiate each other into 100000 module instances; the limit is 10000"), "{err}");
        let limits = ShapeLimits { instances: 1_000_000, ..ShapeLimits::default() };
        assert_eq!(check(&bytes, &limits).unwrap().instances, 100_000);
    }

    #[test]
    fn many_or_large_functions_are_refused() {
        let limits = ShapeLimits { functions: 0, ..ShapeLimits::default() };
        assert!(check(&nested_blocks(1), &limits).unwrap_err().to_string().contains("1 functions or more; the limit is 0"));
        let limits = ShapeLimits { function_bytes: 100, ..ShapeLimits::default() };
        let err = check(&nested_blocks(1_000), &limits).unwrap_err();
        assert!(err.to_string().contains("a function of 2 KiB; the limit is 0 KiB"), "{err}");
    }

    #[test]
    fn unreadable_bytes_pass_to_the_compiler() {
        assert_eq!(check(b"\0asm\x0d\0\x01\0\x99\x99", &ShapeLimits::default()).unwrap().component_depth, 1);
    }
}
