// AWS managed or customer managed: the console's policy pickers and
// attached-policy tables say which a policy is, as AWS's console does in
// its Type column, because kaginashi lists AWS's managed policies
// (arn:aws:iam::aws:policy/…) next to the account's own and the names
// alone do not tell them apart (an account may even have its own
// "AdministratorAccess").

import { h } from './dom';
import { str, type Obj } from './aws';

export type PolicyType = 'AWS managed' | 'Customer managed';
export const POLICY_TYPES: PolicyType[] = ['Customer managed', 'AWS managed'];

/** The type of a managed policy by its ARN: AWS's have account "aws". */
export function policyType(arn: string): PolicyType {
  return /^arn:[^:]+:iam::aws:policy\//.test(arn) ? 'AWS managed' : 'Customer managed';
}

/** A Type cell: a badge with the type's text, and its class for styling. */
export function policyTypeBadge(arn: string): HTMLElement {
  const t = policyType(arn);
  return h('span', { class: t === 'AWS managed' ? 'badge badge-aws' : 'badge badge-customer', 'data-policy-type': t }, t);
}

/**
 * A policy picker: a <select> of policies grouped by type (an <optgroup>
 * per type, labelled as AWS's console labels them; option text stays the
 * policy's name) and a type filter that narrows it. Policies are ListPolicies
 * members; the option values are ARNs.
 */
export function policyPicker(policies: Obj[], attrs: Record<string, string> = {}): { pick: HTMLSelectElement; filter: HTMLSelectElement } {
  const pick = h('select', attrs);
  const filter = h(
    'select',
    { name: 'policyType' },
    h('option', { value: '' }, 'All types'),
    POLICY_TYPES.map((t) => h('option', { value: t }, t)),
  );
  const fill = (): void => {
    const want = filter.value;
    const chosen = pick.value;
    pick.replaceChildren(h('option', { value: '' }, 'Choose a policy…'));
    for (const t of POLICY_TYPES) {
      if (want && want !== t) continue;
      const ps = policies.filter((p) => policyType(str(p, 'Arn', 'ARN')) === t);
      if (ps.length) pick.appendChild(h('optgroup', { label: t }, ps.map((p) => h('option', { value: str(p, 'Arn', 'ARN') }, str(p, 'PolicyName')))));
    }
    // Keep the choice when it is still listed.
    pick.value = Array.from(pick.options).some((o) => o.value === chosen) ? chosen : '';
  };
  filter.addEventListener('change', fill);
  fill();
  return { pick, filter };
}
