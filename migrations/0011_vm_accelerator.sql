-- The accelerator a VM's domain was last defined with: 'kvm' or 'qemu' (TCG), or another
-- libvirt domain type (the test driver's 'test'); NULL until its first define.
ALTER TABLE vms ADD COLUMN accelerator text CHECK (accelerator ~ '^[a-z]{1,16}$');
