//! A workflow plan compiled to an arena of nodes with function indices, for the event loop.

use faasconf_core::topology::{Stage, Workflow};

/// One compiled stage.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// Call a function; `nested` is what it calls after its own work.
    Call {
        function: usize,
        nested: Option<u32>,
    },
    /// Children one after another.
    Sequence(Vec<u32>),
    /// Children at once, joined.
    Parallel(Vec<u32>),
    /// One child, chosen with probability proportional to weight (`cumulative` ends at 1).
    Branch {
        cumulative: Vec<f64>,
        arms: Vec<u32>,
    },
}

/// The compiled plan.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub nodes: Vec<Node>,
    pub root: u32,
}

impl Plan {
    /// Compiles a validated workflow's plan (function names are known to exist).
    pub fn compile(workflow: &Workflow) -> Plan {
        let mut nodes = Vec::new();
        let root = compile_stage(&workflow.plan, workflow, &mut nodes);
        Plan { nodes, root }
    }

    pub fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }
}

fn compile_stage(stage: &Stage, workflow: &Workflow, nodes: &mut Vec<Node>) -> u32 {
    let node = match stage {
        Stage::Call(call) => {
            // Validated workflows only call known functions.
            let function = workflow.function_index(&call.function).unwrap_or(0);
            let nested = call
                .calls
                .as_ref()
                .map(|s| compile_stage(s, workflow, nodes));
            Node::Call { function, nested }
        }
        Stage::Sequence(stages) => Node::Sequence(
            stages
                .iter()
                .map(|s| compile_stage(s, workflow, nodes))
                .collect(),
        ),
        Stage::Parallel(stages) => Node::Parallel(
            stages
                .iter()
                .map(|s| compile_stage(s, workflow, nodes))
                .collect(),
        ),
        Stage::Branch(arms) => {
            let total: f64 = arms.iter().map(|a| a.weight).sum();
            let mut acc = 0.0;
            let cumulative = arms
                .iter()
                .map(|a| {
                    acc += a.weight / total;
                    acc
                })
                .collect();
            Node::Branch {
                cumulative,
                arms: arms
                    .iter()
                    .map(|a| compile_stage(&a.stage, workflow, nodes))
                    .collect(),
            }
        }
    };
    nodes.push(node);
    (nodes.len() - 1) as u32
}
